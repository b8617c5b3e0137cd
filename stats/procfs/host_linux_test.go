package procfs

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/dockervisor/dockervisor/internal/testenv"
)

func sysinfo(t *testing.T) unix.Sysinfo_t {
	t.Helper()
	var si unix.Sysinfo_t
	require.NoError(t, unix.Sysinfo(&si))
	return si
}

func TestReadHostMemoryMatchesSysinfo(t *testing.T) {
	m, err := ReadHostMemory()
	require.NoError(t, err)
	si := sysinfo(t)
	// MemTotal and sysinfo's totalram are the same page count.
	require.Equal(t, uint64(si.Totalram)*uint64(si.Unit), m.TotalBytes)
	require.Positive(t, m.AvailableBytes)
	require.LessOrEqual(t, m.AvailableBytes, m.TotalBytes)
	require.LessOrEqual(t, m.FreeBytes, m.AvailableBytes)
}

func TestReadUptimeMatchesSysinfo(t *testing.T) {
	up, err := ReadUptime()
	require.NoError(t, err)
	si := sysinfo(t)
	require.InDelta(t, float64(si.Uptime), up.Seconds(), 2)
}

func TestReadLoadAverageMatchesSysinfo(t *testing.T) {
	before := sysinfo(t)
	la, err := ReadLoadAverage()
	require.NoError(t, err)
	after := sysinfo(t)
	for i := range la {
		// /proc/loadavg prints the kernel's fixed-point average rounded to
		// two decimals; the kernel may update it (every 5 s) between reads.
		b, a := float64(before.Loads[i])/65536, float64(after.Loads[i])/65536
		near := func(x float64) bool { return la[i] >= x-0.011 && la[i] <= x+0.011 }
		require.True(t, near(b) || near(a), "load %d: /proc %.2f, sysinfo %.4f/%.4f", i, la[i], b, a)
		require.GreaterOrEqual(t, la[i], 0.0)
	}
}

// burnCPU spins until this process has used at least d more CPU time (user
// plus system, from getrusage), so the amount of work is fixed, not the
// wall time it takes.
func burnCPU(t *testing.T, d time.Duration) {
	t.Helper()
	used := func() time.Duration {
		var ru unix.Rusage
		require.NoError(t, unix.Getrusage(unix.RUSAGE_SELF, &ru))
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	start := used()
	x := 0
	for used()-start < d {
		for i := range 100000 {
			x += i
		}
	}
	_ = x
}

func TestReadCPUTimesCountsBusyWork(t *testing.T) {
	before, err := ReadCPUTimes()
	require.NoError(t, err)
	burnCPU(t, 300*time.Millisecond)
	after, err := ReadCPUTimes()
	require.NoError(t, err)
	require.Greater(t, after.Total(), before.Total())
	busy := func(c CPUTimes) uint64 { return c.Total() - c.Idle - c.IOWait }
	// 300 ms of CPU is 30 ticks at USER_HZ=100; leave room for accounting
	// granularity.
	require.GreaterOrEqual(t, busy(after)-busy(before), uint64(15))
	require.Greater(t, CPUUtilization(before, after), 0.0)
}

func TestDiskUsageMatchesDF(t *testing.T) {
	total, used, err := DiskUsage("/")
	require.NoError(t, err)
	out, err := exec.CommandContext(t.Context(), "df", "-B1", "--output=size,used", "/").Output()
	if err != nil {
		testenv.Missing(t, "df: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	require.Len(t, lines, 2)
	f := strings.Fields(lines[1])
	dfTotal, err := strconv.ParseUint(f[0], 10, 64)
	require.NoError(t, err)
	dfUsed, err := strconv.ParseUint(f[1], 10, 64)
	require.NoError(t, err)
	require.Equal(t, dfTotal, total)
	// Other processes write concurrently; the formula must still agree.
	require.InDelta(t, float64(dfUsed), float64(used), 1<<30)
	require.Less(t, used, total)
}

func TestDiskUsageMissingPath(t *testing.T) {
	_, _, err := DiskUsage("/nonexistent/dockervisor-stats")
	require.Error(t, err)
	require.True(t, errors.Is(err, fs.ErrNotExist), "%v", err)
}

func TestNumCPUMatchesGetconf(t *testing.T) {
	out, err := exec.CommandContext(t.Context(), "getconf", "_NPROCESSORS_ONLN").Output()
	if err != nil {
		testenv.Missing(t, "getconf: %v", err)
	}
	want, err := strconv.Atoi(strings.TrimSpace(string(out)))
	require.NoError(t, err)
	require.Equal(t, want, NumCPU())
}

func TestHostSampler(t *testing.T) {
	s := NewHostSampler("/")
	ctx := t.Context()
	h1, err := s.Sample(ctx)
	require.NoError(t, err)

	name, err := os.Hostname()
	require.NoError(t, err)
	require.Equal(t, name, h1.Hostname)
	require.Equal(t, NumCPU(), h1.VCPUs)
	m, err := ReadHostMemory()
	require.NoError(t, err)
	require.Equal(t, int64(m.TotalBytes>>20), h1.MemoryMB)
	require.Positive(t, h1.MemoryUsedMB)
	require.Positive(t, h1.MemoryFreeMB)
	require.InDelta(t, h1.MemoryMB, h1.MemoryUsedMB+h1.MemoryFreeMB, 1)
	total, _, err := DiskUsage("/")
	require.NoError(t, err)
	require.Equal(t, int64(total>>30), h1.DiskGB)
	require.LessOrEqual(t, h1.DiskUsedGB, h1.DiskGB)
	require.Positive(t, h1.Uptime)
	require.False(t, h1.Time.IsZero())
	// Since boot: some CPU was used by the time this test runs.
	require.Greater(t, h1.CPUUtilization, 0.0)
	// The instance side is the caller's.
	require.Zero(t, h1.VCPUsUsed)
	require.Zero(t, h1.MemoryClaimedMB)
	require.Nil(t, h1.Instances)
	require.Empty(t, h1.HypervisorType)

	burnCPU(t, 300*time.Millisecond)
	h2, err := s.Sample(ctx)
	require.NoError(t, err)
	require.Greater(t, h2.CPUUtilization, 0.0)
	require.LessOrEqual(t, h2.CPUUtilization, 100.0)
	require.GreaterOrEqual(t, h2.Uptime, h1.Uptime)

	// Equal consecutive samples are safe: no NaN, no division by zero.
	h3, err := s.Sample(ctx)
	require.NoError(t, err)
	require.GreaterOrEqual(t, h3.CPUUtilization, 0.0)
	require.LessOrEqual(t, h3.CPUUtilization, 100.0)
}

func TestHostSamplerWithoutDisk(t *testing.T) {
	h, err := NewHostSampler("").Sample(t.Context())
	require.NoError(t, err)
	require.Zero(t, h.DiskGB)
	require.Positive(t, h.MemoryMB)
}

func TestHostSamplerErrors(t *testing.T) {
	_, err := NewHostSampler("/nonexistent/dockervisor-stats").Sample(t.Context())
	require.True(t, errors.Is(err, fs.ErrNotExist), "%v", err)

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err = NewHostSampler("/").Sample(ctx)
	require.ErrorIs(t, err, context.Canceled)
}

func TestHostSamplerConcurrent(t *testing.T) {
	s := NewHostSampler("/")
	var wg sync.WaitGroup
	errs := make(chan error, 8*20)
	for range 8 {
		wg.Go(func() {
			for range 20 {
				h, err := s.Sample(t.Context())
				if err == nil && (h.CPUUtilization < 0 || h.CPUUtilization > 100) {
					err = errors.New("utilisation out of range")
				}
				if err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func BenchmarkHostSample(b *testing.B) {
	s := NewHostSampler("/")
	ctx := context.Background()
	for b.Loop() {
		if _, err := s.Sample(ctx); err != nil {
			b.Fatal(err)
		}
	}
}
