package testenv

import (
	"errors"
	"syscall"

	"golang.org/x/sys/unix"
)

// daemonAttr makes a child process the leader of its own process group
// that dies with the test binary.
func daemonAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
}

// unmountDetach detaches the mount at path; one that is not (or no longer)
// mounted is no error.
func unmountDetach(path string) error {
	if err := unix.Unmount(path, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return err
	}
	return nil
}
