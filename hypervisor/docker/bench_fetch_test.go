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

// Modes of an iteration of a fetch benchmark.
const (
	benchBaseline = iota // the store stream straight into client.ImageLoad
	benchSpawn           // Spawn, which fetches the image from the store
)

// fetchBench is what the benchmarks of spawning from a store share: a
// Driver over a fresh localdir store, images new to the engine (busybox
// plus a layer of testarchive.BenchMiB MiB of fresh pseudo-random data,
// under a new ID), and per mode the bytes and the time spent. Iterations
// alternate which mode goes first, so that the noise of a shared engine
// hits both alike.
type fetchBench struct {
	b       *testing.B
	cli     *client.Client
	store   *localdir.Store
	d       *Driver
	addRefs func(refs ...string)
	// steps holds when the last Spawn reached each step and end when it
	// returned (Spawn calls the step hook synchronously).
	steps map[string]time.Time
	end   time.Time
	spent [2]time.Duration
	bytes [2]int64
}

func newFetchBench(b *testing.B) *fetchBench {
	b.Helper()
	cli := testenv.MustHaveDocker(b)
	store, err := localdir.New(b.TempDir(), localdir.WithoutSync())
	if err != nil {
		b.Fatal(err)
	}
	f := &fetchBench{b: b, cli: cli, store: store, steps: make(map[string]time.Time)}
	f.d, f.addRefs = benchStoreDriver(b, cli, testenv.UniqueName("b"), store)
	f.d.stepHook = func(step string) { f.steps[step] = time.Now() }
	return f
}

// run runs b.N iterations of both modes, timed only where one says.
func (f *fetchBench) run(iteration func(i, mode int)) {
	f.b.StopTimer()
	f.b.ResetTimer()
	for i := range f.b.N {
		first, second := benchBaseline, benchSpawn
		if i%2 == 1 {
			first, second = benchSpawn, benchBaseline
		}
		iteration(i, first)
		iteration(i, second)
	}
}

// one runs iteration i in mode. put stores a new image under id; then
// Spawn of it (the benchmark's timer runs only here; around, if set, is
// called just before and its result just after) or the baseline load is
// timed. It cleans up and returns the stored metadata and the time taken.
func (f *fetchBench) one(i, mode int, put func(spec *testarchive.Spec, id string) image.Metadata, around func() (after func())) (image.Metadata, time.Duration) {
	b, ctx := f.b, f.b.Context()
	spec := testarchive.New(b, testarchive.BenchMiB()<<20)
	id := testenv.UniqueName(fmt.Sprintf("bench-%d-", mode))
	tag := engine.TagFor(id)
	f.addRefs(tag, spec.RepoTag, spec.ImageID())
	m := put(spec, id)
	runtime.GC()
	instID := fmt.Sprintf("i%d", i)
	var err error
	var took time.Duration
	if mode == benchSpawn {
		after := func() {}
		if around != nil {
			after = around()
		}
		clear(f.steps)
		begin := time.Now()
		b.StartTimer()
		_, err = f.d.Spawn(ctx, hypervisor.InstanceSpec{ID: instID, Name: "vm", Image: id, Command: []string{"sleep", "3600"}, VCPUs: 1, MemoryMB: 64})
		b.StopTimer()
		f.end = time.Now()
		took = f.end.Sub(begin)
		after()
	} else {
		begin := time.Now()
		err = testarchive.RawStoreLoad(ctx, f.cli, f.store, id)
		took = time.Since(begin)
	}
	if err != nil {
		b.Fatal(err)
	}
	if mode == benchSpawn {
		b.SetBytes(m.Size)
		if err := f.d.Destroy(ctx, instID); err != nil {
			b.Fatal(err)
		}
	}
	testarchive.RemoveImages(b, f.cli, tag, spec.RepoTag)
	if err := f.store.Delete(ctx, id); err != nil {
		b.Fatal(err)
	}
	return m, took
}

// fetchTime is the part of the last Spawn up to its create step: store
// stat, fetch, verification, load and tag.
func (f *fetchBench) fetchTime() time.Duration {
	return f.steps[StepCreate].Sub(f.steps[StepEnsureImage])
}

// add counts n bytes handled in d in mode.
func (f *fetchBench) add(mode int, n int64, d time.Duration) {
	f.bytes[mode] += n
	f.spent[mode] += d
}

// mbps is the throughput of mode in MB/s.
func (f *fetchBench) mbps(mode int) float64 {
	return float64(f.bytes[mode]) / f.spent[mode].Seconds() / 1e6
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
