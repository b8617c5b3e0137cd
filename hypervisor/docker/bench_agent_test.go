package docker

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"golang.org/x/sync/errgroup"

	"github.com/dockervisor/dockervisor/hypervisor"
	"github.com/dockervisor/dockervisor/internal/enginestats"
	"github.com/dockervisor/dockervisor/internal/testenv"
)

// agentBenchInstances is the fleet size of BenchmarkAgent.
const agentBenchInstances = 100

// BenchmarkAgent spawns 100 running busybox instances on a private engine
// (8 spawns at a time; removed with the engine at the end) and measures,
// each against a baseline taken in the same run:
//
//   - Reconcile (report only, every instance known) vs the engine's own
//     container list, the call it cannot do without;
//   - recovery after an agent's crash (a new Driver, Reconcile with the
//     remove policy, Resume; and Reconcile with Resume set, one call) vs
//     the same container list;
//   - AllInstanceStats vs 100 sequential InstanceStats calls, and vs 100
//     engine stats calls made 8 at a time;
//   - Resize (validation, usage check, update, record, event) vs the
//     engine's bare update call on the same container.
func BenchmarkAgent(b *testing.B) {
	eng := testenv.StartEngine(b, testenv.EngineOptions{})
	ref := "dockervisor-test/busybox:bench"
	if err := eng.LoadBusybox(b.Context(), ref); err != nil {
		b.Fatal(err)
	}
	opts := []Option{WithDockerHost(eng.Socket), WithStateDir(b.TempDir()), WithStopTimeout(time.Second)}
	d, err := New(opts...)
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	ctx := context.Background()
	ids := make([]string, agentBenchInstances)
	start := time.Now()
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for i := range ids {
		ids[i] = fmt.Sprintf("bench-%03d", i)
		g.Go(func() error {
			_, err := d.Spawn(gctx, hypervisor.InstanceSpec{ID: ids[i], Image: ref, Command: sleeper, MemoryMB: 64})
			return err
		})
	}
	if err := g.Wait(); err != nil {
		b.Fatal(err)
	}
	b.Logf("spawned %d instances in %v", len(ids), time.Since(start).Round(time.Millisecond))
	api := eng.Client

	b.Run("Reconcile100", func(b *testing.B) {
		var rec, list time.Duration
		for b.Loop() {
			t0 := time.Now()
			rep, err := d.Reconcile(ctx, hypervisor.ReconcileOptions{Known: ids})
			rec += time.Since(t0)
			if err != nil || len(rep.Unknown)+len(rep.Missing)+len(rep.Busy) != 0 {
				b.Fatalf("reconcile: %v %+v", err, rep)
			}
			t0 = time.Now()
			if _, err := api.ContainerList(ctx, client.ContainerListOptions{All: true}); err != nil {
				b.Fatal(err)
			}
			list += time.Since(t0)
		}
		n := float64(b.N)
		b.ReportMetric(float64(rec.Microseconds())/n/1000, "reconcile-ms")
		b.ReportMetric(float64(list.Microseconds())/n/1000, "engine-list-ms")
		b.ReportMetric(float64(rec)/float64(list), "x-list")
	})

	b.Run("Recovery100", func(b *testing.B) {
		// What an agent does after its restart: a new Driver, Reconcile
		// with the remove policy (every instance known), Resume; and the
		// same in one call (Reconcile with Resume set). Nothing needs
		// recovering: the cost of finding that out.
		var two, one, list time.Duration
		recoverWith := func(both bool) time.Duration {
			t0 := time.Now()
			nd, err := New(opts...)
			if err != nil {
				b.Fatal(err)
			}
			defer nd.Close()
			rep, err := nd.Reconcile(ctx, hypervisor.ReconcileOptions{Known: ids, Policy: hypervisor.ReconcileRemove, Resume: !both})
			if err != nil || len(rep.Unknown)+len(rep.Missing)+len(rep.Busy)+len(rep.Removed)+len(rep.Interrupted) != 0 {
				b.Fatalf("reconcile: %v %+v", err, rep)
			}
			if both {
				res, err := nd.Resume(ctx, hypervisor.ResumeOptions{})
				if err != nil || len(res.Resumed)+len(res.Failed) != 0 {
					b.Fatalf("resume: %v %+v", err, res)
				}
			}
			return time.Since(t0)
		}
		for b.Loop() {
			two += recoverWith(true)
			one += recoverWith(false)
			t0 := time.Now()
			if _, err := api.ContainerList(ctx, client.ContainerListOptions{All: true}); err != nil {
				b.Fatal(err)
			}
			list += time.Since(t0)
		}
		n := float64(b.N)
		b.ReportMetric(float64(two.Microseconds())/n/1000, "reconcile+resume-ms")
		b.ReportMetric(float64(one.Microseconds())/n/1000, "reconcile-resume-ms")
		b.ReportMetric(float64(list.Microseconds())/n/1000, "engine-list-ms")
		b.ReportMetric(float64(two)/float64(list), "x-list")
		b.ReportMetric(float64(one)/float64(list), "one-call-x-list")
	})

	b.Run("BulkStats100", func(b *testing.B) {
		var bulk, single, engine time.Duration
		for b.Loop() {
			t0 := time.Now()
			all, err := d.AllInstanceStats(ctx)
			bulk += time.Since(t0)
			if err != nil || len(all) != len(ids) {
				b.Fatalf("bulk: %v, %d samples", err, len(all))
			}
			t0 = time.Now()
			for _, id := range ids {
				if _, err := d.InstanceStats(ctx, id); err != nil {
					b.Fatal(err)
				}
			}
			single += time.Since(t0)
			t0 = time.Now()
			var eg errgroup.Group
			eg.SetLimit(bulkStatsWorkers)
			for _, id := range ids {
				eg.Go(func() error {
					_, err := enginestats.Fetch(ctx, api, d.containerName(id), enginestats.Options{})
					return err
				})
			}
			if err := eg.Wait(); err != nil {
				b.Fatal(err)
			}
			engine += time.Since(t0)
		}
		n := float64(b.N)
		b.ReportMetric(float64(bulk.Microseconds())/n/1000, "bulk-ms")
		b.ReportMetric(float64(single.Microseconds())/n/1000, "100-single-ms")
		b.ReportMetric(float64(engine.Microseconds())/n/1000, "100-engine-stats-ms")
		b.ReportMetric(float64(single)/float64(bulk), "single/bulk")
	})

	b.Run("Resize", func(b *testing.B) {
		id := ids[0]
		cid := d.containerName(ids[1])
		var ours, bare time.Duration
		i := 0
		for b.Loop() {
			mem := int64(64 + 8*(i%2))
			i++
			t0 := time.Now()
			if err := d.Resize(ctx, id, hypervisor.Flavor{VCPUs: 1, MemoryMB: mem}); err != nil {
				b.Fatal(err)
			}
			ours += time.Since(t0)
			res := container.Resources{CPUShares: 1024, Memory: mem << 20, MemorySwap: mem << 20}
			t0 = time.Now()
			if _, err := api.ContainerUpdate(ctx, cid, client.ContainerUpdateOptions{Resources: &res}); err != nil {
				b.Fatal(err)
			}
			bare += time.Since(t0)
		}
		n := float64(b.N)
		b.ReportMetric(float64(ours.Microseconds())/n/1000, "resize-ms")
		b.ReportMetric(float64(bare.Microseconds())/n/1000, "engine-update-ms")
		b.ReportMetric(float64(ours)/float64(bare), "x-update")
	})
}
