package engine_test

import (
	"bufio"
	"context"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dockervisor/dockervisor/image"
	"github.com/dockervisor/dockervisor/image/engine"
	"github.com/dockervisor/dockervisor/image/localdir"
	"github.com/dockervisor/dockervisor/internal/testarchive"
	"github.com/dockervisor/dockervisor/internal/testenv"
)

// BenchmarkLoadFromStore loads non-cached images (busybox plus a layer of
// DOCKERVISOR_BENCH_MIB MiB, default 64, of fresh pseudo-random data, so
// no layer is cached) streamed from a localdir store through engine.Load.
// Each iteration also loads a second, equally built image the baseline
// way — the same store stream straight into client.ImageLoad — in
// alternating order, so that the noise of a shared engine hits both alike.
// ns/op and MB/s are Load's; the metrics report the baseline's MB/s and
// the throughput ratio Load/ImageLoad.
func BenchmarkLoadFromStore(b *testing.B) {
	cli := testenv.MustHaveDocker(b)
	s, err := localdir.New(b.TempDir(), localdir.WithoutSync())
	if err != nil {
		b.Fatal(err)
	}
	size := testarchive.BenchMiB() << 20
	ctx := context.Background()
	var spent [2]time.Duration
	var done [2]int64
	run := func(mode int) {
		spec := testarchive.New(b, size)
		m := spec.Store(b, s, image.Metadata{Name: "bench"})
		tag := engine.TagFor(m.ID)
		runtime.GC()
		start := time.Now()
		if mode == 1 {
			b.StartTimer()
		}
		var err error
		if mode == 1 {
			var rc io.ReadCloser
			if rc, err = s.Open(ctx, m.ID); err == nil {
				_, err = engine.Load(ctx, cli, rc, tag)
				rc.Close()
			}
		} else {
			err = testarchive.RawStoreLoad(ctx, cli, s, m.ID)
		}
		b.StopTimer()
		spent[mode] += time.Since(start)
		done[mode] += m.Size
		if err != nil {
			b.Fatal(err)
		}
		if mode == 1 {
			b.SetBytes(m.Size)
		}
		testarchive.RemoveImages(b, cli, tag, spec.RepoTag, spec.ImageID())
		if err := s.Delete(ctx, m.ID); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	for i := range b.N {
		run(i % 2)       // 0: baseline ImageLoad, 1: Load
		run((i + 1) % 2) // the other one
	}
	load := float64(done[1]) / spent[1].Seconds()
	base := float64(done[0]) / spent[0].Seconds()
	b.ReportMetric(base/1e6, "baseline-MB/s")
	b.ReportMetric(load/base, "ratio")
}

// procStatus returns a field of /proc/self/status in bytes.
func procStatus(field string) int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return -1
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return -1
}

// BenchmarkLoad512MiBPeakMemory generates a 512 MiB docker archive
// (busybox plus a layer with one 512 MiB pseudo-random file) into a
// localdir store, then loads it once with engine.Load and reports the
// growth of the process's peak RSS (VmHWM, reset before the load) and the
// peak Go heap during the load. It fails above 64 MiB. Run it alone,
// without -race: go test -run XXX -bench Load512MiB -benchtime 1x.
func BenchmarkLoad512MiBPeakMemory(b *testing.B) {
	cli := testenv.MustHaveDocker(b)
	s, err := localdir.New(b.TempDir(), localdir.WithoutSync())
	if err != nil {
		b.Fatal(err)
	}
	for range b.N {
		b.StopTimer()
		spec := testarchive.New(b, 512<<20)
		m := spec.Store(b, s, image.Metadata{Name: "bench"})
		tag := engine.TagFor(m.ID)
		ctx := context.Background()
		runtime.GC()
		// Writing 5 to clear_refs resets VmHWM to the current RSS.
		if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
			b.Logf("cannot reset VmHWM: %v", err)
		}
		rssBefore := procStatus("VmRSS")
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		heapBefore := ms.HeapInuse

		var peakHeap uint64
		stop := make(chan struct{})
		var wg sync.WaitGroup
		wg.Go(func() {
			t := time.NewTicker(20 * time.Millisecond)
			defer t.Stop()
			for {
				var ms runtime.MemStats
				runtime.ReadMemStats(&ms)
				peakHeap = max(peakHeap, ms.HeapInuse)
				select {
				case <-stop:
					return
				case <-t.C:
				}
			}
		})
		start := time.Now()
		b.StartTimer()
		rc, err := s.Open(ctx, m.ID)
		if err != nil {
			b.Fatal(err)
		}
		id, err := engine.Load(ctx, cli, rc, tag)
		rc.Close()
		b.StopTimer()
		elapsed := time.Since(start)
		close(stop)
		wg.Wait()
		hwm := procStatus("VmHWM")
		if err != nil {
			b.Fatal(err)
		}
		b.SetBytes(m.Size)
		rssDelta := float64(hwm-rssBefore) / (1 << 20)
		heapDelta := float64(int64(peakHeap)-int64(heapBefore)) / (1 << 20)
		b.ReportMetric(rssDelta, "peak-rss-delta-MiB")
		b.ReportMetric(heapDelta, "peak-heap-delta-MiB")
		b.Logf("%s: archive %d bytes loaded in %s (%.1f MB/s); VmRSS before %.1f MiB, VmHWM during load %.1f MiB (delta %.1f MiB); Go heap in use before %.1f MiB, peak %.1f MiB",
			id, m.Size, elapsed.Round(time.Millisecond), float64(m.Size)/elapsed.Seconds()/1e6,
			float64(rssBefore)/(1<<20), float64(hwm)/(1<<20), rssDelta, float64(heapBefore)/(1<<20), float64(peakHeap)/(1<<20))
		if rssDelta > 64 {
			b.Errorf("peak RSS grew by %.1f MiB while loading, want <= 64 MiB", rssDelta)
		}
		testarchive.RemoveImages(b, cli, tag, spec.RepoTag, id)
		if err := s.Delete(ctx, m.ID); err != nil {
			b.Fatal(err)
		}
	}
}
