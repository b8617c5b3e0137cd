package docker

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/dockervisor/dockervisor/hypervisor"
	"github.com/dockervisor/dockervisor/image"
	"github.com/dockervisor/dockervisor/image/engine"
	"github.com/dockervisor/dockervisor/image/localdir"
	"github.com/dockervisor/dockervisor/internal/testarchive"
	"github.com/dockervisor/dockervisor/internal/testenv"
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
	cli := testenv.MustHaveDocker(b)
	store, err := localdir.New(b.TempDir(), localdir.WithoutSync())
	if err != nil {
		b.Fatal(err)
	}
	uniq := testenv.UniqueName("b")
	d, addRefs := benchStoreDriver(b, cli, uniq, store)
	ctx := b.Context()
	size := testarchive.BenchMiB() << 20

	// Spawn calls stepHook synchronously: no locking needed.
	var ensureAt, createAt, startAt time.Time
	d.stepHook = func(step string) {
		switch step {
		case StepEnsureImage:
			ensureAt = time.Now()
		case StepCreate:
			createAt = time.Now()
		case StepStart:
			startAt = time.Now()
		}
	}

	const (
		baseline = iota
		spawn
	)
	var spent [2]time.Duration
	var bytes [2]int64
	var fetch, create, start time.Duration
	run := func(i, mode int) {
		spec := testarchive.New(b, size)
		id := testenv.UniqueName(fmt.Sprintf("bench-%d-", mode))
		tag := engine.TagFor(id)
		addRefs(tag, spec.RepoTag)
		m := spec.Store(b, store, image.Metadata{ID: id, Name: "bench"})
		var err error
		runtime.GC()
		instID := fmt.Sprintf("i%d", i)
		begin := time.Now()
		if mode == spawn {
			b.StartTimer()
			_, err = d.Spawn(ctx, hypervisor.InstanceSpec{ID: instID, Name: "vm", Image: id, Command: []string{"sleep", "3600"}, VCPUs: 1, MemoryMB: 64})
			b.StopTimer()
		} else {
			err = testarchive.RawStoreLoad(ctx, cli, store, id)
		}
		end := time.Now()
		spent[mode] += end.Sub(begin)
		bytes[mode] += m.Size
		if err != nil {
			b.Fatal(err)
		}
		if mode == spawn {
			fetch += createAt.Sub(ensureAt)
			create += startAt.Sub(createAt)
			start += end.Sub(startAt)
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
		if i%2 == 1 { // alternate which goes first
			first, second = spawn, baseline
		}
		run(i, first)
		run(i, second)
	}
	mbps := func(n int64, d time.Duration) float64 { return float64(n) / d.Seconds() / 1e6 }
	base := mbps(bytes[baseline], spent[baseline])
	b.ReportMetric(base, "baseline-MB/s")
	b.ReportMetric(mbps(bytes[spawn], fetch), "fetch-MB/s")
	perOp := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1e3 / float64(b.N) }
	b.ReportMetric(perOp(fetch), "fetch-ms/op")
	b.ReportMetric(perOp(create), "create-ms/op")
	b.ReportMetric(perOp(start), "start-ms/op")
	b.ReportMetric(mbps(bytes[spawn], spent[spawn])/base, "ratio")
	b.ReportMetric(mbps(bytes[spawn], fetch)/base, "fetch-ratio")
}

// benchStoreDriver returns a Driver with prefixes unique to the benchmark
// that spawns from store. At cleanup, whatever state the Driver is in, every
// container carrying its instance label is removed with the raw client,
// then every image reference given to addRefs, then the Driver is closed.
func benchStoreDriver(b *testing.B, cli *client.Client, uniq string, store image.Reader) (d *Driver, addRefs func(refs ...string)) {
	b.Helper()
	d, err := New(WithLabelPrefix("io.dockervisor."+uniq+"."), WithNamePrefix("dv-"+uniq+"-"),
		WithStateDir(b.TempDir()), WithStopTimeout(2*time.Second), WithImageStore(store))
	if err != nil {
		b.Fatal(err)
	}
	var refs []string
	b.Cleanup(func() {
		defer d.Close()
		ctx := context.WithoutCancel(b.Context())
		res, err := cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: make(client.Filters).Add("label", d.label(labelInstanceID))})
		if err != nil {
			b.Errorf("cleanup: %v", err)
		} else {
			for _, c := range res.Items {
				if _, err := cli.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true}); err != nil {
					b.Errorf("cleanup: %v", err)
				}
			}
		}
		testarchive.RemoveImages(b, cli, refs...)
	})
	return d, func(r ...string) { refs = append(refs, r...) }
}
