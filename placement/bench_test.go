package placement_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/placement/v1/resourceproviders"
	"github.com/stretchr/testify/require"

	"github.com/dockervisor/dockervisor/internal/testenv"
	"github.com/dockervisor/dockervisor/placement"
)

// benchPlacement is a private Placement holding the three shared engines
// (tagged with realTrait) and 1,000 registered hosts without engines.
type benchPlacement struct {
	client    *gophercloud.ServiceClient
	realTrait string
}

var benchOnce struct {
	sync.Mutex
	p *benchPlacement
}

// setupBenchPlacement registers the hosts once per test binary.
func setupBenchPlacement(b *testing.B) *benchPlacement {
	benchOnce.Lock()
	defer benchOnce.Unlock()
	if benchOnce.p != nil {
		return benchOnce.p
	}
	ep := testenv.MustHavePlacement(b)
	c, err := placement.NewNoAuthClient(ep, testenv.PlacementToken)
	require.NoError(b, err)
	ctx := context.Background()
	p := &benchPlacement{client: c, realTrait: placement.CustomTrait(testenv.UniqueName("bench"))}
	for i, e := range testenv.MustHaveEngines(b) {
		d := newDriver(b, e, fmt.Sprintf("bench-real-%d-%s", i, e.Name))
		r := newReporter(b, c, d, p.realTrait, placement.WithInventoryPolicy(placement.VCPU, placement.InventoryPolicy{AllocationRatio: 4096}))
		_, err := r.Report(ctx)
		require.NoError(b, err)
	}
	// 1,000 hosts without engines, registered as a Reporter would.
	prefix := testenv.UniqueName("bench-host-")
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, 1000)
	sem := make(chan struct{}, 4)
	for i := range 1000 {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			uuid := placement.NewUUID()
			_, err := resourceproviders.Create(ctx, c, resourceproviders.CreateOpts{Name: fmt.Sprintf("%s-%04d", prefix, i), UUID: uuid}).Extract()
			if err == nil {
				_, err = resourceproviders.UpdateInventories(ctx, c, uuid, resourceproviders.UpdateInventoriesOpts{
					ResourceProviderGeneration: 0,
					Inventories: map[string]placement.Inventory{
						placement.VCPU:     {Total: 64, AllocationRatio: 16, MinUnit: 1, MaxUnit: 64, StepSize: 1},
						placement.MemoryMB: {Total: 262144, Reserved: 512, AllocationRatio: 1.5, MinUnit: 1, MaxUnit: 262144, StepSize: 1},
					},
				}).Extract()
			}
			if err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(b, err)
	}
	b.Logf("registered 1,000 providers in %s", time.Since(start).Round(time.Millisecond))
	benchOnce.p = p
	return p
}

// BenchmarkDecisions measures placement decisions (allocation candidates,
// weighing, claim) per second for one scheduler and four concurrent
// ones, over the 3 real providers and over all 1,000+3 registered, and
// reports the fraction of claims lost to a concurrent scheduler.
func BenchmarkDecisions(b *testing.B) {
	p := setupBenchPlacement(b)
	for _, providers := range []string{"3", "1003"} {
		req := placement.Request{Resources: placement.Resources{placement.VCPU: 1, placement.MemoryMB: 16}}
		if providers == "3" {
			req.Required = []string{p.realTrait}
		}
		for _, schedulers := range []int{1, 4} {
			b.Run(fmt.Sprintf("providers=%s/schedulers=%d", providers, schedulers), func(b *testing.B) {
				cl, err := placement.NewClaimer(p.client, placement.Owner{})
				require.NoError(b, err)
				scheds := make([]*placement.Scheduler, schedulers)
				for i := range scheds {
					scheds[i], err = placement.NewScheduler(cl, nil, placement.WithWeigher(placement.Pack), placement.WithMaxAttempts(50))
					require.NoError(b, err)
				}
				var (
					next     atomic.Int64
					mu       sync.Mutex
					consumed []string
					failures atomic.Int64
				)
				b.ResetTimer()
				var wg sync.WaitGroup
				for _, s := range scheds {
					wg.Go(func() {
						for next.Add(1) <= int64(b.N) {
							id := placement.NewUUID()
							if _, err := s.Select(context.Background(), id, req); err != nil {
								failures.Add(1)
								continue
							}
							mu.Lock()
							consumed = append(consumed, id)
							mu.Unlock()
						}
					})
				}
				wg.Wait()
				b.StopTimer()
				var claims, conflicts int64
				for _, s := range scheds {
					d, c := s.Stats()
					claims += d
					conflicts += c
				}
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "decisions/s")
				b.ReportMetric(float64(conflicts)/float64(max(claims, 1)), "conflicts/claim")
				require.Zero(b, failures.Load(), "every decision placed")
				for _, id := range consumed {
					require.NoError(b, cl.Release(context.Background(), id))
				}
			})
		}
	}
}

// BenchmarkPlace50 measures the time from "place 50 instances over the 3
// engines" to all running, against spawning the same 50 directly on one
// engine (the baseline), both with 4 spawns in flight.
func BenchmarkPlace50(b *testing.B) {
	const m, inFlight = 50, 4
	es := testenv.MustHaveEngines(b)
	c, _ := newClient(b)
	cl, err := placement.NewClaimer(c, placement.Owner{})
	require.NoError(b, err)
	trait := placement.CustomTrait(testenv.UniqueName("place"))
	var targets []placement.Target
	for i, e := range es {
		d := newDriver(b, e, fmt.Sprintf("bench-place-%d-%s", i, e.Name))
		r := newReporter(b, c, d, trait, placement.WithInventoryPolicy(placement.VCPU, placement.InventoryPolicy{AllocationRatio: 64}))
		st, err := r.Report(context.Background())
		require.NoError(b, err)
		targets = append(targets, placement.Target{ProviderUUID: st.ProviderUUID, Name: e.Name, Driver: d})
	}
	req := placement.Request{Resources: placement.InstanceResources(1, 64, 0), Required: []string{trait}}
	spawnAll := func(b *testing.B, spawn func(id string) error) []string {
		ids := make([]string, m)
		for i := range ids {
			ids[i] = placement.NewUUID()
		}
		work := make(chan string)
		var wg sync.WaitGroup
		var failed atomic.Int64
		for range inFlight {
			wg.Go(func() {
				for id := range work {
					if err := spawn(id); err != nil {
						b.Error(err)
						failed.Add(1)
					}
				}
			})
		}
		for _, id := range ids {
			work <- id
		}
		close(work)
		wg.Wait()
		return ids
	}
	var direct, placed time.Duration
	for range b.N {
		// Baseline: 50 spawns on one engine, no Placement.
		d := targets[0].Driver
		t0 := time.Now()
		ids := spawnAll(b, func(id string) error { _, err := d.Spawn(context.Background(), busyboxSpec(id)); return err })
		direct += time.Since(t0)
		b.StopTimer()
		for _, id := range ids {
			require.NoError(b, d.Destroy(context.Background(), id))
		}
		b.StartTimer()

		s, err := placement.NewScheduler(cl, targets, placement.WithWeigher(placement.Spread))
		require.NoError(b, err)
		t0 = time.Now()
		ids = spawnAll(b, func(id string) error { _, err := s.Place(context.Background(), busyboxSpec(id), req); return err })
		placed += time.Since(t0)
		b.StopTimer()
		for _, id := range ids {
			al, err := cl.Allocations(context.Background(), id)
			require.NoError(b, err)
			for rp := range al {
				for _, t := range targets {
					if t.ProviderUUID == rp {
						require.NoError(b, placement.DestroyReleased(context.Background(), cl, t.Driver, id))
					}
				}
			}
		}
		b.StartTimer()
	}
	b.ReportMetric(direct.Seconds()/float64(b.N), "s-direct-1-engine")
	b.ReportMetric(placed.Seconds()/float64(b.N), "s-placed-3-engines")
	b.ReportMetric(placed.Seconds()/direct.Seconds(), "placed/direct")
}
