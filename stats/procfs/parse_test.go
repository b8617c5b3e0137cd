package procfs

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

const cannedMeminfo = `MemTotal:        4028440 kB
MemFree:          225784 kB
MemAvailable:    3131412 kB
Buffers:          155048 kB
Cached:          2796972 kB
SwapCached:            0 kB
HugePages_Total:       0
Hugepagesize:       2048 kB
`

func TestParseMemInfo(t *testing.T) {
	m, err := ParseMemInfo([]byte(cannedMeminfo))
	require.NoError(t, err)
	require.Equal(t, MemInfo{TotalBytes: 4028440 * 1024, FreeBytes: 225784 * 1024, AvailableBytes: 3131412 * 1024}, m)
	require.Equal(t, uint64(4028440-3131412)*1024, m.UsedBytes())
}

func TestParseMemInfoWithoutMemAvailable(t *testing.T) {
	old := "MemTotal: 1000 kB\nMemFree: 100 kB\nBuffers: 20 kB\nCached: 300 kB\n"
	m, err := ParseMemInfo([]byte(old))
	require.NoError(t, err)
	require.Equal(t, uint64(420*1024), m.AvailableBytes)
	require.Equal(t, uint64(580*1024), m.UsedBytes())
}

func TestParseMalformed(t *testing.T) {
	for name, fn := range map[string]func() error{
		"meminfo empty":      func() error { _, err := ParseMemInfo(nil); return err },
		"meminfo bad number": func() error { _, err := ParseMemInfo([]byte("MemTotal: x kB\nMemFree: 1 kB\n")); return err },
		"meminfo no value":   func() error { _, err := ParseMemInfo([]byte("MemTotal:\nMemFree: 1 kB\n")); return err },
		"loadavg short":      func() error { _, err := ParseLoadAverage([]byte("0.1 0.2")); return err },
		"loadavg bad":        func() error { _, err := ParseLoadAverage([]byte("0.1 x 0.3 1/2 3")); return err },
		"uptime empty":       func() error { _, err := ParseUptime([]byte("\n")); return err },
		"uptime bad":         func() error { _, err := ParseUptime([]byte("-3.5 1.0")); return err },
		"stat no cpu":        func() error { _, err := ParseCPUTimes([]byte("cpu0 1 2 3 4\nintr 5\n")); return err },
		"stat short":         func() error { _, err := ParseCPUTimes([]byte("cpu 1 2 3\n")); return err },
		"stat bad":           func() error { _, err := ParseCPUTimes([]byte("cpu 1 2 x 4\n")); return err },
		"cpu list":           func() error { _, err := ParseCPUList("0-x"); return err },
		"cpu list reversed":  func() error { _, err := ParseCPUList("3-1"); return err },
	} {
		t.Run(name, func(t *testing.T) {
			err := fn()
			require.Error(t, err)
			require.True(t, errors.Is(err, ErrMalformed), "%v", err)
		})
	}
}

func TestParseLoadAverage(t *testing.T) {
	la, err := ParseLoadAverage([]byte("0.52 1.07 2.00 3/412 12345\n"))
	require.NoError(t, err)
	require.Equal(t, [3]float64{0.52, 1.07, 2.00}, la)
}

func TestParseUptime(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"12345.67 2345.10\n": 12345*time.Second + 670*time.Millisecond,
		"5 1":                5 * time.Second,
		"0.05 0.00":          50 * time.Millisecond,
	} {
		d, err := ParseUptime([]byte(in))
		require.NoError(t, err, in)
		require.Equal(t, want, d, in)
	}
}

func TestParseCPUTimes(t *testing.T) {
	in := "cpu  4705 356 584 3699 23 0 27 5 7 9\ncpu0 1 2 3 4 5 6 7 8 0 0\nintr 1\n"
	c, err := ParseCPUTimes([]byte(in))
	require.NoError(t, err)
	require.Equal(t, CPUTimes{User: 4705, Nice: 356, System: 584, Idle: 3699, IOWait: 23, SoftIRQ: 27, Steal: 5}, c)
	require.Equal(t, uint64(4705+356+584+3699+23+27+5), c.Total())

	old, err := ParseCPUTimes([]byte("cpu 1 2 3 4\n"))
	require.NoError(t, err)
	require.Equal(t, CPUTimes{User: 1, Nice: 2, System: 3, Idle: 4}, old)
}

func TestParseCPUList(t *testing.T) {
	for in, want := range map[string]int{"0": 1, "0-3\n": 4, "0-3,8,10-11": 7, "": 0} {
		n, err := ParseCPUList(in)
		require.NoError(t, err, in)
		require.Equal(t, want, n, in)
	}
}

func TestCPUUtilization(t *testing.T) {
	base := CPUTimes{User: 100, System: 50, Idle: 800, IOWait: 50}
	tests := []struct {
		name string
		prev CPUTimes
		cur  CPUTimes
		want float64
	}{
		{"zero delta", base, base, 0},
		{"both zero", CPUTimes{}, CPUTimes{}, 0},
		{"backwards", CPUTimes{User: 200, Idle: 900}, base, 0},
		{"all idle", base, CPUTimes{User: 100, System: 50, Idle: 900, IOWait: 50}, 0},
		{"iowait is idle", base, CPUTimes{User: 100, System: 50, Idle: 800, IOWait: 150}, 0},
		{"all busy", base, CPUTimes{User: 150, System: 100, Idle: 800, IOWait: 50}, 100},
		{"quarter", base, CPUTimes{User: 110, System: 55, Idle: 870, IOWait: 55, Steal: 10}, 25},
		{"since boot", CPUTimes{}, base, 15},
		{"idle went back but total grew", CPUTimes{User: 10, Idle: 100}, CPUTimes{User: 200, Idle: 90}, 100},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := CPUUtilization(tt.prev, tt.cur)
			require.InDelta(t, tt.want, got, 1e-9)
			require.GreaterOrEqual(t, got, 0.0)
			require.LessOrEqual(t, got, 100.0)
		})
	}
}
