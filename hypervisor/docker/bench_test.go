package docker

import (
	"context"
	"fmt"
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
	d, err := New(WithLabelPrefix("io.dockervisor."+uniq+"."), WithNamePrefix("dv-"+uniq+"-"), WithStateDir(b.TempDir()))
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	ctx := b.Context()
	b.Cleanup(func() {
		list, _ := d.List(context.WithoutCancel(ctx), hypervisor.ListOptions{})
		for _, inst := range list {
			_ = d.Destroy(context.WithoutCancel(ctx), inst.ID)
		}
	})

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
