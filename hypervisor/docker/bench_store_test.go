package docker

import (
	"testing"
	"time"

	"github.com/dockervisor/dockervisor/image"
	"github.com/dockervisor/dockervisor/internal/testarchive"
)

// BenchmarkSpawnFromStore measures Spawn of an instance whose image is in a
// localdir store and not yet on the engine, so Spawn fetches it: each image
// is busybox plus a layer of DOCKERVISOR_BENCH_MIB MiB (default 64) of
// fresh pseudo-random data, stored under a new ID. Each iteration also
// loads a second, equally built image the baseline way — the same store
// stream straight into client.ImageLoad — alternating which goes first, so
// that the noise of a shared engine hits both alike.
//
// ns/op and MB/s are Spawn's, container create and start included. The
// metrics: fetch-ms/op and fetch-MB/s are the part of Spawn up to the
// create step (store stat, fetch, verify, load, tag); create-ms/op and
// start-ms/op the container create and start steps; baseline-MB/s is the
// raw ImageLoad's; ratio is Spawn's throughput over the baseline's
// (target: >= 0.9), fetch-ratio the fetch part's over the baseline's.
func BenchmarkSpawnFromStore(b *testing.B) {
	f := newFetchBench(b)
	var fetch, create, start time.Duration
	f.run(func(i, mode int) {
		m, took := f.one(i, mode, func(spec *testarchive.Spec, id string) image.Metadata {
			return spec.Store(b, f.store, image.Metadata{ID: id, Name: "bench"})
		}, nil)
		f.add(mode, m.Size, took)
		if mode == benchSpawn {
			fetch += f.fetchTime()
			create += f.steps[StepStart].Sub(f.steps[StepCreate])
			start += f.end.Sub(f.steps[StepStart])
		}
	})
	base := f.mbps(benchBaseline)
	fetchMBps := float64(f.bytes[benchSpawn]) / fetch.Seconds() / 1e6
	perOp := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1e3 / float64(b.N) }
	b.ReportMetric(base, "baseline-MB/s")
	b.ReportMetric(fetchMBps, "fetch-MB/s")
	b.ReportMetric(perOp(fetch), "fetch-ms/op")
	b.ReportMetric(perOp(create), "create-ms/op")
	b.ReportMetric(perOp(start), "start-ms/op")
	b.ReportMetric(f.mbps(benchSpawn)/base, "ratio")
	b.ReportMetric(fetchMBps/base, "fetch-ratio")
}
