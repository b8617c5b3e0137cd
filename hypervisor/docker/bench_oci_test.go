package docker

import (
	"fmt"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/dockervisor/dockervisor/hypervisor"
	"github.com/dockervisor/dockervisor/image"
	"github.com/dockervisor/dockervisor/image/engine"
	"github.com/dockervisor/dockervisor/image/localdir"
	"github.com/dockervisor/dockervisor/internal/testarchive"
	"github.com/dockervisor/dockervisor/internal/testenv"
)

// BenchmarkSpawnFromOCIStore measures the fetch part of Spawn (store stat,
// two reads of the archive, verification, the OCI → docker-save stream
// into the engine's load, tag) for an OCI archive written by the real
// skopeo: busybox plus a layer of DOCKERVISOR_BENCH_MIB MiB (default 64) of
// fresh pseudo-random data, in a localdir store. The baseline, in the same
// iteration and alternating which goes first, is a raw client.ImageLoad of
// an equally built image stored as a docker-save archive (what `docker
// save` writes: uncompressed layers). Each image is new to the engine.
//
// Sub-benchmarks: "plain" has uncompressed OCI layers, the same bytes the
// baseline loads (target ratio >= 0.9); "gzip" has gzip layers, so the
// engine's own decompression is part of its time. Metrics: fetch-MB/s and
// baseline-MB/s (archive bytes over time), ratio (fetch over baseline
// throughput), peak-rss-delta-MiB (growth of the process's peak RSS during
// the fetch, which should not grow with the size).
func BenchmarkSpawnFromOCIStore(b *testing.B) {
	for _, compression := range []string{testarchive.Plain, testarchive.Gzip} {
		name := compression
		if compression == testarchive.Plain {
			name = "plain"
		}
		b.Run(name, func(b *testing.B) { benchSpawnFromOCI(b, compression) })
	}
}

func benchSpawnFromOCI(b *testing.B, compression string) {
	cli := testenv.MustHaveDocker(b)
	testenv.MustHaveSkopeo(b)
	store, err := localdir.New(b.TempDir(), localdir.WithoutSync())
	if err != nil {
		b.Fatal(err)
	}
	uniq := testenv.UniqueName("b")
	d, addRefs := benchStoreDriver(b, cli, uniq, store)
	ctx := b.Context()
	size := testarchive.BenchMiB() << 20

	var ensureAt, createAt time.Time
	d.stepHook = func(step string) {
		switch step {
		case StepEnsureImage:
			ensureAt = time.Now()
		case StepCreate:
			createAt = time.Now()
		}
	}
	const (
		baseline = iota
		spawn
	)
	var spent [2]time.Duration
	var bytes [2]int64
	var peakRSS float64
	run := func(i, mode int) {
		spec := testarchive.New(b, size)
		id := testenv.UniqueName(fmt.Sprintf("bench-%d-", mode))
		tag := engine.TagFor(id)
		addRefs(tag, spec.RepoTag, spec.ImageID())
		var m image.Metadata
		if mode == spawn {
			path := spec.OCIArchive(b, compression)
			f, err := os.Open(path)
			if err != nil {
				b.Fatal(err)
			}
			m, err = store.Create(ctx, image.Metadata{ID: id, Name: "bench"}, f)
			f.Close()
			if err != nil {
				b.Fatal(err)
			}
			if err := os.Remove(path); err != nil {
				b.Fatal(err)
			}
		} else {
			m = spec.Store(b, store, image.Metadata{ID: id, Name: "bench"})
		}
		runtime.GC()
		instID := fmt.Sprintf("i%d", i)
		if mode == spawn {
			if err := testarchive.ResetPeakRSS(); err != nil {
				b.Logf("cannot reset VmHWM: %v", err)
			}
			rssBefore := testarchive.ProcStatus("VmRSS")
			b.StartTimer()
			_, err = d.Spawn(ctx, hypervisor.InstanceSpec{ID: instID, Name: "vm", Image: id, Command: []string{"sleep", "3600"}, VCPUs: 1, MemoryMB: 64})
			b.StopTimer()
			peakRSS = max(peakRSS, float64(testarchive.ProcStatus("VmHWM")-rssBefore)/(1<<20))
			spent[mode] += createAt.Sub(ensureAt)
		} else {
			begin := time.Now()
			err = testarchive.RawStoreLoad(ctx, cli, store, id)
			spent[mode] += time.Since(begin)
		}
		bytes[mode] += m.Size
		if err != nil {
			b.Fatal(err)
		}
		if mode == spawn {
			b.SetBytes(m.Size)
			if err := d.Destroy(ctx, instID); err != nil {
				b.Fatal(err)
			}
		}
		testarchive.RemoveImages(b, cli, tag, spec.RepoTag)
		if err := store.Delete(ctx, id); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ResetTimer()
	for i := range b.N {
		first, second := baseline, spawn
		if i%2 == 1 {
			first, second = spawn, baseline
		}
		run(i, first)
		run(i, second)
	}
	mbps := func(n int64, d time.Duration) float64 { return float64(n) / d.Seconds() / 1e6 }
	base := mbps(bytes[baseline], spent[baseline])
	b.ReportMetric(base, "baseline-MB/s")
	b.ReportMetric(mbps(bytes[spawn], spent[spawn]), "fetch-MB/s")
	b.ReportMetric(mbps(bytes[spawn], spent[spawn])/base, "ratio")
	b.ReportMetric(peakRSS, "peak-rss-delta-MiB")
}
