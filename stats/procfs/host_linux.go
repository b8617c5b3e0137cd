package procfs

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/dockervisor/dockervisor/stats"
)

// procRoot is where the readers find procfs; tests of this package do not
// change it, they read the real /proc.
const procRoot = "/proc"

// ReadHostMemory reads /proc/meminfo. The values are in bytes.
func ReadHostMemory() (MemInfo, error) {
	b, err := os.ReadFile(procRoot + "/meminfo")
	if err != nil {
		return MemInfo{}, fmt.Errorf("procfs: read meminfo: %w", err)
	}
	return ParseMemInfo(b)
}

// ReadLoadAverage reads the 1, 5 and 15 minute load averages from
// /proc/loadavg.
func ReadLoadAverage() ([3]float64, error) {
	b, err := os.ReadFile(procRoot + "/loadavg")
	if err != nil {
		return [3]float64{}, fmt.Errorf("procfs: read loadavg: %w", err)
	}
	return ParseLoadAverage(b)
}

// ReadUptime reads the time since boot from /proc/uptime.
func ReadUptime() (time.Duration, error) {
	b, err := os.ReadFile(procRoot + "/uptime")
	if err != nil {
		return 0, fmt.Errorf("procfs: read uptime: %w", err)
	}
	return ParseUptime(b)
}

// ReadCPUTimes reads the aggregate CPU times of the host from /proc/stat.
func ReadCPUTimes() (CPUTimes, error) {
	b, err := os.ReadFile(procRoot + "/stat")
	if err != nil {
		return CPUTimes{}, fmt.Errorf("procfs: read /proc/stat: %w", err)
	}
	return ParseCPUTimes(b)
}

// DiskUsage returns the size of the file system holding path and the
// space used on it, in bytes, from statfs(2) as df(1) computes them:
// total = blocks × fragment size, used = total − free, where free counts
// the blocks reserved for root too. So used + available (for non-root)
// can be less than total, exactly as in df's output.
func DiskUsage(path string) (totalBytes, usedBytes uint64, err error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return 0, 0, fmt.Errorf("procfs: statfs %s: %w", path, err)
	}
	bs := uint64(st.Frsize)
	if bs == 0 {
		bs = uint64(st.Bsize)
	}
	totalBytes = st.Blocks * bs
	free := st.Bfree * bs
	if free > totalBytes {
		free = totalBytes
	}
	return totalBytes, totalBytes - free, nil
}

// NumCPU returns the number of CPUs of the host that are online, from
// /sys/devices/system/cpu/online. Unlike runtime.NumCPU it ignores the
// calling process's CPU affinity mask, so it reports the host's capacity
// (what a scheduler offers as vCPUs) even when the agent itself is pinned.
// It falls back to runtime.NumCPU when sysfs is not readable.
func NumCPU() int {
	b, err := os.ReadFile("/sys/devices/system/cpu/online")
	if err != nil {
		return runtime.NumCPU()
	}
	n, err := ParseCPUList(string(b))
	if err != nil || n == 0 {
		return runtime.NumCPU()
	}
	return n
}

// HostSampler samples the host side of a stats.Host: hostname, CPUs, memory,
// disk, CPU utilisation, load average and uptime. It keeps the previous
// /proc/stat reading so that each Sample reports the CPU utilisation over
// the interval since the previous call; the first call reports it since
// boot. It is safe for concurrent use (calls are serialised, so each
// interval is measured between two consecutive calls).
//
// The instance side of stats.Host — VCPUsUsed, MemoryClaimedMB, Instances,
// HypervisorType, HypervisorVersion and APIVersion — is left zero: the
// caller (the hypervisor backend) knows its instances and its engine and
// fills those fields in.
type HostSampler struct {
	diskPath string

	mu   sync.Mutex
	prev CPUTimes
}

// NewHostSampler returns a sampler that reports the disk size and use of
// the file system holding diskPath (for Docker, the engine's data root,
// e.g. /var/lib/docker). An empty diskPath leaves the disk fields zero.
func NewHostSampler(diskPath string) *HostSampler {
	return &HostSampler{diskPath: diskPath}
}

// Sample reads the host's resources. Memory is in MiB and disk in GiB,
// both rounded down. ctx is checked before any reading starts; the reads
// themselves are from procfs and statfs and do not block.
func (s *HostSampler) Sample(ctx context.Context) (stats.Host, error) {
	if err := ctx.Err(); err != nil {
		return stats.Host{}, err
	}
	name, err := os.Hostname()
	if err != nil {
		return stats.Host{}, fmt.Errorf("procfs: hostname: %w", err)
	}
	mem, err := ReadHostMemory()
	if err != nil {
		return stats.Host{}, err
	}
	la, err := ReadLoadAverage()
	if err != nil {
		return stats.Host{}, err
	}
	up, err := ReadUptime()
	if err != nil {
		return stats.Host{}, err
	}
	h := stats.Host{
		Hostname:     name,
		VCPUs:        NumCPU(),
		MemoryMB:     int64(mem.TotalBytes >> 20),
		MemoryUsedMB: int64(mem.UsedBytes() >> 20),
		MemoryFreeMB: int64(mem.AvailableBytes >> 20),
		LoadAverage:  la,
		Uptime:       up,
	}
	if s.diskPath != "" {
		total, used, err := DiskUsage(s.diskPath)
		if err != nil {
			return stats.Host{}, err
		}
		h.DiskGB, h.DiskUsedGB = int64(total>>30), int64(used>>30)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	cur, err := ReadCPUTimes()
	if err != nil {
		return stats.Host{}, err
	}
	h.CPUUtilization = CPUUtilization(s.prev, cur)
	s.prev = cur
	h.Time = time.Now()
	return h, nil
}
