package placement_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
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
	endpoint  string
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
	p := &benchPlacement{client: c, endpoint: ep, realTrait: placement.CustomTrait(testenv.UniqueName("bench"))}
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

// rawPeer makes a placement decision as plainly as Placement allows: one
// GET of the allocation candidates (the query a Scheduler sends) and one
// PUT claiming the first, over a keep-alive net/http client, decoding only
// the allocation requests. Its time is the floor of a decision.
type rawPeer struct {
	client   *http.Client
	endpoint string
	query    string
}

func newRawPeer(endpoint string, req placement.Request, limit int) *rawPeer {
	classes := slices.Sorted(maps.Keys(req.Resources))
	res := make([]string, len(classes))
	for i, class := range classes {
		res[i] = fmt.Sprintf("%s:%d", class, req.Resources[class])
	}
	required := append(slices.Clone(req.Required), "!"+placement.TraitDisabled)
	q := url.Values{"resources": {strings.Join(res, ",")}, "required": {strings.Join(required, ",")}, "limit": {strconv.Itoa(limit)}}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 8
	return &rawPeer{client: &http.Client{Transport: tr}, endpoint: strings.TrimSuffix(endpoint, "/"), query: q.Encode()}
}

func (p *rawPeer) do(method, path string, body io.Reader) ([]byte, int, error) {
	req, err := http.NewRequest(method, p.endpoint+path, body)
	if err != nil {
		return nil, 0, err
	}
	req.Header.Set("X-Auth-Token", testenv.PlacementToken)
	req.Header.Set("OpenStack-API-Version", "placement "+placement.Microversion)
	req.Header.Set("Content-Type", "application/json")
	resp, err := p.client.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return b, resp.StatusCode, err
}

// decide claims the first candidate for consumer id.
func (p *rawPeer) decide(id string) error {
	b, code, err := p.do(http.MethodGet, "/allocation_candidates?"+p.query, nil)
	if err != nil || code != http.StatusOK {
		return fmt.Errorf("raw GET: %d %s: %w", code, b, err)
	}
	var ans struct {
		AllocationRequests []struct {
			Allocations json.RawMessage `json:"allocations"`
		} `json:"allocation_requests"`
	}
	if err := json.Unmarshal(b, &ans); err != nil || len(ans.AllocationRequests) == 0 {
		return fmt.Errorf("raw GET: no candidate in %.200s: %w", b, err)
	}
	body := fmt.Sprintf(`{"allocations": %s, "project_id": %q, "user_id": %q, "consumer_generation": null, "consumer_type": %q}`,
		ans.AllocationRequests[0].Allocations, placement.DefaultProjectID, placement.DefaultUserID, placement.ConsumerTypeInstance)
	b, code, err = p.do(http.MethodPut, "/allocations/"+id, strings.NewReader(body))
	if err != nil || code != http.StatusNoContent {
		return fmt.Errorf("raw PUT: %d %s: %w", code, b, err)
	}
	return nil
}

func median(ds []time.Duration) time.Duration {
	s := slices.Sorted(slices.Values(ds))
	return s[len(s)/2]
}

// BenchmarkDecisions measures placement decisions (allocation candidates,
// weighing, claim), over the 3 real providers and over all 1,000+3
// registered, against a Placement under uwsgi with several workers. Each
// round interleaves:
//
//   - the floor: 8 decisions of one Scheduler, each beside one of the raw
//     peer (rawPeer: Placement's own GET of the same candidates and the
//     claim's PUT), in alternating order; decision/floor is the ratio of
//     their medians;
//   - scaling: 16 decisions by one Scheduler, then 16 by four concurrent
//     ones; 4-vs-1-schedulers is the ratio of their rates, and
//     conflicts/claim the fraction of the four's claims that lost a race.
//
// Run it with -benchtime Nx (N rounds).
func BenchmarkDecisions(b *testing.B) {
	p := setupBenchPlacement(b)
	for _, providers := range []string{"3", "1003"} {
		req := placement.Request{Resources: placement.Resources{placement.VCPU: 1, placement.MemoryMB: 16}}
		if providers == "3" {
			req.Required = []string{p.realTrait}
		}
		b.Run("providers="+providers, func(b *testing.B) {
			ctx := context.Background()
			cl, err := placement.NewClaimer(p.client, placement.Owner{})
			require.NoError(b, err)
			newSched := func() *placement.Scheduler {
				s, err := placement.NewScheduler(cl, nil, placement.WithWeigher(placement.Pack), placement.WithMaxAttempts(50))
				require.NoError(b, err)
				return s
			}
			one := newSched()
			four := []*placement.Scheduler{newSched(), newSched(), newSched(), newSched()}
			peer := newRawPeer(p.endpoint, req, placement.DefaultCandidateLimit)
			var (
				mu       sync.Mutex
				consumed []string
			)
			decide := func(s *placement.Scheduler) {
				id := placement.NewUUID()
				_, err := s.Select(ctx, id, req)
				require.NoError(b, err)
				mu.Lock()
				consumed = append(consumed, id)
				mu.Unlock()
			}
			const pairs, batch = 8, 16
			var sdk, raw []time.Duration
			var t1, t4 time.Duration
			for i := range b.N {
				for j := range pairs {
					floor := func() {
						id := placement.NewUUID()
						t0 := time.Now()
						require.NoError(b, peer.decide(id))
						raw = append(raw, time.Since(t0))
						consumed = append(consumed, id)
					}
					decision := func() {
						t0 := time.Now()
						decide(one)
						sdk = append(sdk, time.Since(t0))
					}
					if (i+j)%2 == 0 {
						floor()
						decision()
					} else {
						decision()
						floor()
					}
				}
				t0 := time.Now()
				for range batch {
					decide(one)
				}
				t1 += time.Since(t0)
				var next atomic.Int64
				var wg sync.WaitGroup
				t0 = time.Now()
				for _, s := range four {
					wg.Go(func() {
						for next.Add(1) <= batch {
							decide(s)
						}
					})
				}
				wg.Wait()
				t4 += time.Since(t0)
			}
			b.StopTimer()
			var claims, conflicts int64
			for _, s := range four {
				d, c := s.Stats()
				claims += d
				conflicts += c
			}
			n := float64(b.N * batch)
			b.ReportMetric(float64(median(sdk).Microseconds())/1000, "ms/decision")
			b.ReportMetric(float64(median(raw).Microseconds())/1000, "ms/floor")
			b.ReportMetric(float64(median(sdk))/float64(median(raw)), "decision/floor")
			b.ReportMetric(n/t1.Seconds(), "decisions/s-1-scheduler")
			b.ReportMetric(n/t4.Seconds(), "decisions/s-4-schedulers")
			b.ReportMetric(t1.Seconds()/t4.Seconds(), "4-vs-1-schedulers")
			b.ReportMetric(float64(conflicts)/float64(max(claims, 1)), "conflicts/claim")
			for _, id := range consumed {
				require.NoError(b, cl.Release(ctx, id))
			}
		})
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
