package docker

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/dockervisor/dockervisor/hypervisor"
	"github.com/dockervisor/dockervisor/internal/testenv"
)

// BenchmarkSpawnDestroy compares a Driver's Spawn+Destroy with the same
// container created, started and removed through the raw moby client. The
// two alternate within each iteration, so both see the same engine and
// machine load; it reports the mean of each and their ratio (target:
// ratio <= 1.10).
func BenchmarkSpawnDestroy(b *testing.B) {
	cli := testenv.MustHaveDocker(b)
	img := testenv.BusyboxImage(b)
	uniq := testenv.UniqueName("b")
	cmd := []string{"sleep", "3600"}
	d := benchDriver(b, cli, uniq)
	ctx := b.Context()

	raw := func(i int) {
		res, err := cli.ContainerCreate(ctx, client.ContainerCreateOptions{
			Name:   fmt.Sprintf("raw-%s-%d", uniq, i),
			Config: &container.Config{Image: img, Cmd: cmd, Hostname: "vm"},
			HostConfig: &container.HostConfig{NetworkMode: "none",
				Resources: container.Resources{CPUShares: 1024, Memory: 64 << 20, MemorySwap: 64 << 20}},
		})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := cli.ContainerStart(ctx, res.ID, client.ContainerStartOptions{}); err != nil {
			b.Fatal(err)
		}
		if _, err := cli.ContainerRemove(ctx, res.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true}); err != nil {
			b.Fatal(err)
		}
	}
	ours := func(i int) {
		id := fmt.Sprintf("i%d", i)
		if _, err := d.Spawn(ctx, hypervisor.InstanceSpec{ID: id, Name: "vm", Image: img, Command: cmd, VCPUs: 1, MemoryMB: 64}); err != nil {
			b.Fatal(err)
		}
		if err := d.Destroy(ctx, id); err != nil {
			b.Fatal(err)
		}
	}

	var rawTotal, oursTotal time.Duration
	n := 0
	for i := 0; b.Loop(); i++ {
		first, second, ft, st := raw, ours, &rawTotal, &oursTotal
		if i%2 == 1 { // alternate which goes first
			first, second, ft, st = ours, raw, &oursTotal, &rawTotal
		}
		t0 := time.Now()
		first(i)
		t1 := time.Now()
		second(i)
		*ft += t1.Sub(t0)
		*st += time.Since(t1)
		n++
	}
	b.ReportMetric(float64(rawTotal.Nanoseconds())/float64(n), "raw-ns/op")
	b.ReportMetric(float64(oursTotal.Nanoseconds())/float64(n), "dockervisor-ns/op")
	b.ReportMetric(float64(oursTotal)/float64(rawTotal), "ratio")
}

// BenchmarkHostAndList measures HostResources and List with 100 of the
// driver's instances on the engine (target: at most 50 ms each). The
// instances are created once, with the raw client for speed, carrying the
// labels Spawn gives them, and removed at the end.
func BenchmarkHostAndList(b *testing.B) {
	cli := testenv.MustHaveDocker(b)
	img := testenv.BusyboxImage(b)
	uniq := testenv.UniqueName("b")
	d := benchDriver(b, cli, uniq)
	ctx := b.Context()
	const n = 100
	var wg sync.WaitGroup
	errs := make(chan error, n)
	sem := make(chan struct{}, 4)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			id := fmt.Sprintf("i%03d", i)
			if _, err := d.Spawn(ctx, hypervisor.InstanceSpec{ID: id, Image: img, Command: []string{"sleep", "3600"}, VCPUs: 1, MemoryMB: 16}); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}

	b.Run("HostResources", func(b *testing.B) {
		for b.Loop() {
			h, err := d.HostResources(ctx)
			if err != nil {
				b.Fatal(err)
			}
			if h.VCPUsUsed != n {
				b.Fatalf("vcpus used %d, want %d", h.VCPUsUsed, n)
			}
		}
	})
	b.Run("List", func(b *testing.B) {
		for b.Loop() {
			list, err := d.List(ctx, hypervisor.ListOptions{})
			if err != nil {
				b.Fatal(err)
			}
			if len(list) != n {
				b.Fatalf("listed %d, want %d", len(list), n)
			}
		}
	})
	b.Run("raw-ContainerList", func(b *testing.B) {
		f := make(client.Filters).Add("label", d.label(labelInstanceID))
		for b.Loop() {
			if _, err := cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// benchDriver returns a Driver with prefixes unique to the benchmark. At
// cleanup every container carrying its instance label is removed with the
// raw client, whatever state the Driver is in.
func benchDriver(b *testing.B, cli *client.Client, uniq string, opts ...Option) *Driver {
	b.Helper()
	d, err := New(append([]Option{WithLabelPrefix("io.dockervisor." + uniq + "."), WithNamePrefix("dv-" + uniq + "-"), WithStateDir(b.TempDir())}, opts...)...)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		d.Close()
		ctx := context.WithoutCancel(b.Context())
		res, err := cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: make(client.Filters).Add("label", d.label(labelInstanceID))})
		if err != nil {
			b.Errorf("cleanup: %v", err)
			return
		}
		for _, c := range res.Items {
			if _, err := cli.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true}); err != nil {
				b.Errorf("cleanup: %v", err)
			}
		}
	})
	return d
}
