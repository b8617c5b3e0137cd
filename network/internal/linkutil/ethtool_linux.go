package linkutil

import (
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ethtoolValue is struct ethtool_value of <linux/ethtool.h>.
type ethtoolValue struct {
	cmd  uint32
	data uint32
}

// ifreqData is struct ifreq with its union as the ifr_data pointer.
type ifreqData struct {
	name [unix.IFNAMSIZ]byte
	data unsafe.Pointer // a pointer field, so the GC and stack copies see it
	_    [16]byte       // the rest of the union
}

func ethtoolIoctl(fd int, name string, v *ethtoolValue) error {
	var ifr ifreqData
	copy(ifr.name[:unix.IFNAMSIZ-1], name)
	ifr.data = unsafe.Pointer(v)
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SIOCETHTOOL, uintptr(unsafe.Pointer(&ifr)))
	runtime.KeepAlive(v)
	if errno != 0 {
		return errno
	}
	return nil
}

func ethtoolSetValue(fd int, name string, cmd, data uint32) error {
	return ethtoolIoctl(fd, name, &ethtoolValue{cmd: cmd, data: data})
}

func ethtoolGetValue(fd int, name string, cmd uint32) (uint32, error) {
	v := ethtoolValue{cmd: cmd}
	err := ethtoolIoctl(fd, name, &v)
	return v.data, err
}
