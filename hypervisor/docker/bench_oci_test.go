package docker

import (
	"os"
	"testing"

	"github.com/dockervisor/dockervisor/image"
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
	testenv.MustHaveSkopeo(b)
	f := newFetchBench(b)
	var peakRSS float64
	f.run(func(i, mode int) {
		put := func(spec *testarchive.Spec, id string) image.Metadata {
			if mode == benchBaseline {
				return spec.Store(b, f.store, image.Metadata{ID: id, Name: "bench"})
			}
			path := spec.OCIArchive(b, compression)
			file, err := os.Open(path)
			if err != nil {
				b.Fatal(err)
			}
			m, err := f.store.Create(b.Context(), image.Metadata{ID: id, Name: "bench"}, file)
			file.Close()
			if err != nil {
				b.Fatal(err)
			}
			if err := os.Remove(path); err != nil {
				b.Fatal(err)
			}
			return m
		}
		rss := func() (after func()) {
			if err := testarchive.ResetPeakRSS(); err != nil {
				b.Logf("cannot reset VmHWM: %v", err)
			}
			before := testarchive.ProcStatus("VmRSS")
			return func() {
				peakRSS = max(peakRSS, float64(testarchive.ProcStatus("VmHWM")-before)/(1<<20))
			}
		}
		m, took := f.one(i, mode, put, rss)
		if mode == benchSpawn {
			took = f.fetchTime()
		}
		f.add(mode, m.Size, took)
	})
	base := f.mbps(benchBaseline)
	b.ReportMetric(base, "baseline-MB/s")
	b.ReportMetric(f.mbps(benchSpawn), "fetch-MB/s")
	b.ReportMetric(f.mbps(benchSpawn)/base, "ratio")
	b.ReportMetric(peakRSS, "peak-rss-delta-MiB")
}
