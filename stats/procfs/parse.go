package procfs

import (
	"bufio"
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/dockervisor/dockervisor/errclass"
)

// ErrMalformed means a kernel file could not be parsed. It is an
// [errclass.ErrUnavailable]: the host's figures cannot be read.
var ErrMalformed = errclass.New("procfs: malformed kernel data", errclass.ErrUnavailable)

// MemInfo is the host's memory as /proc/meminfo reports it, in bytes (the
// kernel reports KiB; the readers multiply by 1024).
type MemInfo struct {
	// TotalBytes is MemTotal: usable RAM.
	TotalBytes uint64 `json:"total_bytes"`
	// AvailableBytes is MemAvailable: the kernel's estimate of memory
	// available for new work without swapping, counting reclaimable page
	// cache. On kernels older than 3.14, which lack it, it is
	// MemFree + Buffers + Cached.
	AvailableBytes uint64 `json:"available_bytes"`
	// FreeBytes is MemFree: memory not used at all.
	FreeBytes uint64 `json:"free_bytes"`
}

// UsedBytes returns the memory in use as free(1) reports it:
// total - available (0 if available exceeds total).
func (m MemInfo) UsedBytes() uint64 {
	if m.AvailableBytes > m.TotalBytes {
		return 0
	}
	return m.TotalBytes - m.AvailableBytes
}

// ParseMemInfo parses the content of /proc/meminfo.
func ParseMemInfo(b []byte) (MemInfo, error) {
	var (
		m                              MemInfo
		haveTotal, haveAvail, haveFree bool
		buffers, cached                uint64
		haveBuffers, haveCached        bool
	)
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		key, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		var dst *uint64
		var seen *bool
		switch key {
		case "MemTotal":
			dst, seen = &m.TotalBytes, &haveTotal
		case "MemAvailable":
			dst, seen = &m.AvailableBytes, &haveAvail
		case "MemFree":
			dst, seen = &m.FreeBytes, &haveFree
		case "Buffers":
			dst, seen = &buffers, &haveBuffers
		case "Cached":
			dst, seen = &cached, &haveCached
		default:
			continue
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			return MemInfo{}, fmt.Errorf("%w: meminfo: no value for %s", ErrMalformed, key)
		}
		v, err := strconv.ParseUint(f[0], 10, 64)
		if err != nil {
			return MemInfo{}, fmt.Errorf("%w: meminfo %s: %w", ErrMalformed, key, err)
		}
		if len(f) > 1 && f[1] == "kB" {
			v *= 1024
		}
		*dst, *seen = v, true
	}
	if err := sc.Err(); err != nil {
		return MemInfo{}, fmt.Errorf("%w: meminfo: %w", ErrMalformed, err)
	}
	if !haveTotal || !haveFree {
		return MemInfo{}, fmt.Errorf("%w: meminfo: MemTotal or MemFree missing", ErrMalformed)
	}
	if !haveAvail {
		m.AvailableBytes = m.FreeBytes + buffers + cached
	}
	return m, nil
}

// ParseLoadAverage parses the content of /proc/loadavg into the 1, 5 and
// 15 minute load averages.
func ParseLoadAverage(b []byte) ([3]float64, error) {
	var la [3]float64
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return la, fmt.Errorf("%w: loadavg: %d fields", ErrMalformed, len(f))
	}
	for i := range la {
		v, err := strconv.ParseFloat(f[i], 64)
		if err != nil {
			return [3]float64{}, fmt.Errorf("%w: loadavg: %w", ErrMalformed, err)
		}
		la[i] = v
	}
	return la, nil
}

// ParseUptime parses the content of /proc/uptime (seconds since boot,
// first field) into a duration.
func ParseUptime(b []byte) (time.Duration, error) {
	f := strings.Fields(string(b))
	if len(f) < 1 {
		return 0, fmt.Errorf("%w: uptime: empty", ErrMalformed)
	}
	sec, frac, _ := strings.Cut(f[0], ".")
	s, err := strconv.ParseInt(sec, 10, 64)
	if err != nil || s < 0 {
		return 0, fmt.Errorf("%w: uptime %q", ErrMalformed, f[0])
	}
	d := time.Duration(s) * time.Second
	if frac != "" {
		if len(frac) > 9 {
			frac = frac[:9]
		}
		n, err := strconv.ParseInt(frac, 10, 64)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("%w: uptime %q", ErrMalformed, f[0])
		}
		for i := len(frac); i < 9; i++ {
			n *= 10
		}
		d += time.Duration(n)
	}
	return d, nil
}

// CPUTimes holds the aggregate time all CPUs of the host spent in each
// mode since boot, from the "cpu" line of /proc/stat, in clock ticks
// (USER_HZ, 1/100 s on Linux). Guest time is already part of User and
// Nice, so it is not kept separately.
type CPUTimes struct {
	User    uint64 `json:"user"`
	Nice    uint64 `json:"nice"`
	System  uint64 `json:"system"`
	Idle    uint64 `json:"idle"`
	IOWait  uint64 `json:"iowait"`
	IRQ     uint64 `json:"irq"`
	SoftIRQ uint64 `json:"softirq"`
	Steal   uint64 `json:"steal"`
}

// Total returns the sum of all modes.
func (c CPUTimes) Total() uint64 {
	return c.User + c.Nice + c.System + c.Idle + c.IOWait + c.IRQ + c.SoftIRQ + c.Steal
}

// Idle time counts Idle and IOWait (a CPU waiting for I/O is idle, as
// top(1) and the procps tools count it); busy time is everything else.
func (c CPUTimes) idleAll() uint64 { return c.Idle + c.IOWait }

// ParseCPUTimes parses the aggregate "cpu" line of /proc/stat. Fields that
// old kernels lack (iowait, irq, softirq, steal) are zero.
func ParseCPUTimes(b []byte) (CPUTimes, error) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 || f[0] != "cpu" {
			continue
		}
		f = f[1:]
		if len(f) < 4 {
			return CPUTimes{}, fmt.Errorf("%w: /proc/stat cpu line has %d fields", ErrMalformed, len(f))
		}
		var v [8]uint64
		for i := 0; i < len(v) && i < len(f); i++ {
			n, err := strconv.ParseUint(f[i], 10, 64)
			if err != nil {
				return CPUTimes{}, fmt.Errorf("%w: /proc/stat cpu line: %w", ErrMalformed, err)
			}
			v[i] = n
		}
		return CPUTimes{User: v[0], Nice: v[1], System: v[2], Idle: v[3], IOWait: v[4], IRQ: v[5], SoftIRQ: v[6], Steal: v[7]}, nil
	}
	if err := sc.Err(); err != nil {
		return CPUTimes{}, fmt.Errorf("%w: /proc/stat: %w", ErrMalformed, err)
	}
	return CPUTimes{}, fmt.Errorf("%w: /proc/stat has no cpu line", ErrMalformed)
}

// CPUUtilization returns the percentage (0 to 100) of the time of all
// host CPUs that was busy between two samples: 100 * Δbusy / Δtotal, where
// busy is every mode except Idle and IOWait. It returns 0 when no time
// passed between the samples or the counters went backwards (cur is older
// than prev, or the host rebooted), so it is safe on equal samples. With a
// zero prev it gives the utilisation since boot.
func CPUUtilization(prev, cur CPUTimes) float64 {
	pt, ct := prev.Total(), cur.Total()
	if ct <= pt {
		return 0
	}
	dTotal := float64(ct - pt)
	dIdle := float64(cur.idleAll()) - float64(prev.idleAll())
	if dIdle < 0 {
		dIdle = 0
	}
	p := 100 * (dTotal - dIdle) / dTotal
	return min(max(p, 0), 100)
}

// ParseCPUList counts the CPUs in a kernel CPU list such as "0-3,8,10-11"
// (the format of /sys/devices/system/cpu/online).
func ParseCPUList(s string) (int, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, nil
	}
	n := 0
	for part := range strings.SplitSeq(s, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		if err != nil || a < 0 {
			return 0, fmt.Errorf("%w: cpu list %q", ErrMalformed, s)
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil || b < a {
				return 0, fmt.Errorf("%w: cpu list %q", ErrMalformed, s)
			}
		}
		n += b - a + 1
	}
	return n, nil
}
