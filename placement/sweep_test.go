package placement_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dockervisor/dockervisor/hypervisor"
	"github.com/dockervisor/dockervisor/hypervisor/hypervisortest"
	"github.com/dockervisor/dockervisor/internal/testenv"
	"github.com/dockervisor/dockervisor/placement"
)

// unlistable is a host whose engine does not answer List.
type unlistable struct{ hypervisor.Lifecycle }

func (unlistable) List(context.Context, hypervisor.ListOptions) ([]hypervisor.Instance, error) {
	return nil, fmt.Errorf("engine gone: %w", hypervisor.ErrUnavailable)
}

// claimFor claims id on the providers given, released when the test ends.
func (cs *confirmSetup) claimFor(t *testing.T, id string, providers ...string) {
	t.Helper()
	alloc := map[string]placement.Resources{}
	for _, p := range providers {
		alloc[p] = cs.req.Resources
	}
	require.NoError(t, cs.cl.Claim(t.Context(), id, alloc))
	t.Cleanup(func() { assert.NoError(t, cs.cl.Release(context.WithoutCancel(t.Context()), id)) })
}

// spawnOn spawns instance id directly on the fake hosts given.
func (cs *confirmSetup) spawnOn(t *testing.T, id string, hosts ...int) {
	t.Helper()
	for _, h := range hosts {
		_, err := cs.fakes[h].Spawn(t.Context(), busyboxSpec(id))
		require.NoError(t, err)
	}
}

// sweepTargets makes a target of every fake host of cs, its driver
// passed through wrap when wrap is not nil.
func (cs *confirmSetup) sweepTargets(wrap func(i int, drv hypervisor.Lifecycle) hypervisor.Lifecycle) []placement.Target {
	targets := make([]placement.Target, len(cs.rps))
	for i, rp := range cs.rps {
		var drv hypervisor.Lifecycle = cs.fakes[i]
		if wrap != nil {
			drv = wrap(i, drv)
		}
		targets[i] = placement.Target{ProviderUUID: rp, Name: fmt.Sprintf("host%d", i), Driver: drv}
	}
	return targets
}

// onHost is a sweepTargets wrap that applies wrap to host n's driver only.
func onHost(n int, wrap func(hypervisor.Lifecycle) hypervisor.Lifecycle) func(int, hypervisor.Lifecycle) hypervisor.Lifecycle {
	return func(i int, drv hypervisor.Lifecycle) hypervisor.Lifecycle {
		if i == n {
			return wrap(drv)
		}
		return drv
	}
}

// TestSweepSettlesDuplicates puts instances on several hosts at once, as
// racing schedulers can, and sweeps: a young duplicate is left alone; an
// old one keeps the copy where its allocations are and loses the others;
// one whose allocations are on none (or more than one) of its hosts is
// reported and left; an instance on one host, a non-UUID name and a host
// taken down are not its business; a host that cannot be listed is an
// error that does not stop the rest.
func TestSweepSettlesDuplicates(t *testing.T) {
	t.Parallel()
	cs := newConfirmSetup(t, 5, 8)
	ctx := t.Context()
	s, err := placement.NewScheduler(cs.cl, cs.sweepTargets(onHost(3, func(drv hypervisor.Lifecycle) hypervisor.Lifecycle { return unlistable{drv} })))
	require.NoError(t, err)

	dup := placement.NewUUID() // on hosts 0 and 1, claimed on 1
	cs.spawnOn(t, dup, 0, 1)
	cs.claimFor(t, dup, cs.rps[1])
	unclaimed := placement.NewUUID() // on 0 and 2, no claim
	cs.spawnOn(t, unclaimed, 0, 2)
	twoClaims := placement.NewUUID() // on 1 and 2, claimed on both
	cs.spawnOn(t, twoClaims, 1, 2)
	cs.claimFor(t, twoClaims, cs.rps[1], cs.rps[2])
	single := placement.NewUUID() // on 0 only, claimed on 2
	cs.spawnOn(t, single, 0)
	cs.claimFor(t, single, cs.rps[2])
	downDup := placement.NewUUID() // on 2 and the down host 4, claimed on 4
	cs.spawnOn(t, downDup, 2, 4)
	cs.claimFor(t, downDup, cs.rps[4])
	cs.spawnOn(t, "not-a-uuid", 0, 1)
	require.NoError(t, s.TakeDown(ctx, cs.rps[4], hypervisor.ErrUnavailable))

	_, err = s.Sweep(ctx, -time.Second)
	require.ErrorIs(t, err, placement.ErrInvalidArgument)

	rep, err := s.Sweep(ctx, time.Hour)
	require.ErrorIs(t, err, hypervisor.ErrUnavailable, "host 3 cannot be listed")
	assert.Contains(t, err.Error(), "host3")
	assert.ElementsMatch(t, []string{dup, unclaimed, twoClaims}, rep.Young, "every duplicate is younger than an hour")
	assert.Empty(t, rep.Kept)
	assert.Empty(t, rep.Removed)
	assert.Empty(t, rep.Unsettled)
	assert.True(t, exists(t, cs.fakes[0], dup), "a young duplicate stays")

	rep, err = s.Sweep(ctx, 0)
	require.ErrorIs(t, err, hypervisor.ErrUnavailable)
	assert.Equal(t, map[string]string{dup: cs.rps[1]}, rep.Kept)
	assert.Equal(t, map[string][]string{dup: {cs.rps[0]}}, rep.Removed)
	assert.ElementsMatch(t, []string{unclaimed, twoClaims}, rep.Unsettled)
	assert.Empty(t, rep.Young)
	assert.False(t, exists(t, cs.fakes[0], dup), "the copy without the claim is gone")
	assert.True(t, exists(t, cs.fakes[1], dup), "the copy with the claim stays")
	for _, c := range []struct {
		id    string
		hosts []int
	}{{unclaimed, []int{0, 2}}, {twoClaims, []int{1, 2}}, {single, []int{0}}, {downDup, []int{2, 4}}, {"not-a-uuid", []int{0, 1}}} {
		for _, h := range c.hosts {
			assert.True(t, exists(t, cs.fakes[h], c.id), "%s on host %d stays", c.id, h)
		}
	}
	held, err := cs.cl.Allocations(ctx, dup)
	require.NoError(t, err)
	assert.Equal(t, map[string]placement.Resources{cs.rps[1]: cs.req.Resources}, held, "the claim is untouched")

	rep, err = s.Sweep(ctx, 0)
	require.ErrorIs(t, err, hypervisor.ErrUnavailable)
	assert.Empty(t, rep.Kept, "settled once")
	assert.ElementsMatch(t, []string{unclaimed, twoClaims}, rep.Unsettled)
}

// TestSweepLeavesPlacementInFlight sweeps while Place is between its
// spawn and its check, with a copy of the instance on the other host:
// the instance is this Scheduler's to settle, so the sweep leaves it.
// Once Place has kept its copy, the next sweep removes the other.
func TestSweepLeavesPlacementInFlight(t *testing.T) {
	t.Parallel()
	cs := newConfirmSetup(t, 2, 4)
	ctx := t.Context()
	var (
		s      *placement.Scheduler
		during placement.SweepReport
		swept  bool
	)
	var err error
	s, err = placement.NewScheduler(cs.cl, cs.sweepTargets(func(i int, drv hypervisor.Lifecycle) hypervisor.Lifecycle {
		return afterSpawn{Lifecycle: drv, hook: func(id string) {
			cs.spawnOn(t, id, 1-i)
			var err error
			during, err = s.Sweep(ctx, 0)
			assert.NoError(t, err)
			swept = true
		}}
	}))
	require.NoError(t, err)
	id := placement.NewUUID()
	t.Cleanup(func() { _ = cs.cl.Release(context.WithoutCancel(ctx), id) })
	d, err := s.Place(ctx, busyboxSpec(id), cs.req)
	require.NoError(t, err)
	require.True(t, swept)
	assert.True(t, during.Empty(), "nothing settled while in flight: %+v", during)
	placed := 0
	if d.ProviderUUID == cs.rps[1] {
		placed = 1
	}
	require.True(t, exists(t, cs.fakes[1-placed], id), "the copy on the other host is still there")

	after, err := s.Sweep(ctx, 0)
	require.NoError(t, err)
	assert.Equal(t, map[string]string{id: d.ProviderUUID}, after.Kept)
	assert.Equal(t, map[string][]string{id: {cs.rps[1-placed]}}, after.Removed)
	assert.False(t, exists(t, cs.fakes[1-placed], id))
	assert.True(t, exists(t, cs.fakes[placed], id))
}

// TestSweepUnknownAgeIsYoung sweeps hosts whose driver reports no
// creation time: with a least age the duplicate is young; with none it
// is settled.
func TestSweepUnknownAgeIsYoung(t *testing.T) {
	t.Parallel()
	cs := newConfirmSetup(t, 2, 4)
	ctx := t.Context()
	for i := range cs.fakes {
		cs.fakes[i] = hypervisortest.NewFake(hypervisortest.WithImages(testenv.EngineBusybox), hypervisortest.WithClock(func() time.Time { return time.Time{} }))
	}
	s, err := placement.NewScheduler(cs.cl, cs.sweepTargets(nil))
	require.NoError(t, err)
	id := placement.NewUUID()
	cs.spawnOn(t, id, 0, 1)
	cs.claimFor(t, id, cs.rps[0])

	rep, err := s.Sweep(ctx, time.Nanosecond)
	require.NoError(t, err)
	assert.Equal(t, []string{id}, rep.Young)
	assert.Empty(t, rep.Removed)

	rep, err = s.Sweep(ctx, 0)
	require.NoError(t, err)
	assert.Equal(t, map[string][]string{id: {cs.rps[1]}}, rep.Removed)
	assert.False(t, exists(t, cs.fakes[1], id))
}

// TestSweepChecksEveryCopysAge sweeps duplicates with one old copy and
// one young one, the young copy first by provider in one and last in the
// other: both are young.
func TestSweepChecksEveryCopysAge(t *testing.T) {
	t.Parallel()
	cs := newConfirmSetup(t, 3, 4)
	ctx := t.Context()
	order := slices.Clone(cs.rps)
	slices.Sort(order)
	hourAgo := func() time.Time { return time.Now().Add(-time.Hour) }
	for i, rp := range cs.rps {
		opts := []hypervisortest.FakeOption{hypervisortest.WithImages(testenv.EngineBusybox)}
		if rp == order[1] { // the middle provider's copies are an hour old
			opts = append(opts, hypervisortest.WithClock(hourAgo))
		}
		cs.fakes[i] = hypervisortest.NewFake(opts...)
	}
	host := func(rp string) int { return slices.Index(cs.rps, rp) }
	s, err := placement.NewScheduler(cs.cl, cs.sweepTargets(nil))
	require.NoError(t, err)
	youngFirst, youngLast := placement.NewUUID(), placement.NewUUID()
	cs.spawnOn(t, youngFirst, host(order[0]), host(order[1]))
	cs.claimFor(t, youngFirst, order[1])
	cs.spawnOn(t, youngLast, host(order[1]), host(order[2]))
	cs.claimFor(t, youngLast, order[1])

	rep, err := s.Sweep(ctx, 30*time.Minute)
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{youngFirst, youngLast}, rep.Young)
	assert.Empty(t, rep.Removed)
	for id, rps := range map[string][]string{youngFirst: order[:2], youngLast: order[1:]} {
		for _, rp := range rps {
			assert.True(t, exists(t, cs.fakes[host(rp)], id), "%s stays on %s", id, rp)
		}
	}
}

// undestroyable is a host whose engine fails every Destroy.
type undestroyable struct{ hypervisor.Lifecycle }

func (undestroyable) Destroy(context.Context, string) error {
	return fmt.Errorf("engine refused: %w", hypervisor.ErrUnavailable)
}

// TestSweepGoesOnAfterFailedDestroy has a copy that cannot be destroyed:
// its instance is not settled, the error says why, and another duplicate
// is settled all the same.
func TestSweepGoesOnAfterFailedDestroy(t *testing.T) {
	t.Parallel()
	cs := newConfirmSetup(t, 3, 4)
	ctx := t.Context()
	s, err := placement.NewScheduler(cs.cl, cs.sweepTargets(onHost(0, func(drv hypervisor.Lifecycle) hypervisor.Lifecycle { return undestroyable{drv} })))
	require.NoError(t, err)
	stuck, fine := placement.NewUUID(), placement.NewUUID()
	cs.spawnOn(t, stuck, 0, 1)
	cs.claimFor(t, stuck, cs.rps[1])
	cs.spawnOn(t, fine, 1, 2)
	cs.claimFor(t, fine, cs.rps[2])

	rep, err := s.Sweep(ctx, 0)
	require.ErrorIs(t, err, hypervisor.ErrUnavailable)
	assert.Contains(t, err.Error(), stuck)
	assert.Equal(t, map[string]string{fine: cs.rps[2]}, rep.Kept, "the other duplicate is settled")
	assert.Equal(t, map[string][]string{fine: {cs.rps[1]}}, rep.Removed)
	assert.True(t, exists(t, cs.fakes[0], stuck))
	assert.False(t, exists(t, cs.fakes[1], fine))
}

// claimMover is a transport that, after the first read of one
// consumer's allocations has been answered, moves that consumer's claim
// (as a Place still checking could), before the caller sees the answer.
type claimMover struct {
	base http.RoundTripper
	id   string
	once sync.Once
	move func()
}

func (m *claimMover) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := m.base.RoundTrip(r)
	if err == nil && r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/allocations/"+m.id) {
		m.once.Do(m.move)
	}
	return resp, err
}

// TestSweepLeavesClaimThatMoves moves the claim of a duplicate between
// Sweep's two reads of it: the instance is left for a later sweep, every
// copy kept; the next sweep settles it where the claim went.
func TestSweepLeavesClaimThatMoves(t *testing.T) {
	t.Parallel()
	cs := newConfirmSetup(t, 2, 4)
	ctx := t.Context()
	id := placement.NewUUID()
	cs.spawnOn(t, id, 0, 1)
	cs.claimFor(t, id, cs.rps[1])

	_, ep := newClient(t)
	c, err := placement.NewNoAuthClient(ep, testenv.PlacementToken)
	require.NoError(t, err)
	base := c.ProviderClient.HTTPClient.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	c.ProviderClient.HTTPClient.Transport = &claimMover{base: base, id: id, move: func() {
		assert.NoError(t, cs.cl.Release(ctx, id))
		assert.NoError(t, cs.cl.Claim(ctx, id, map[string]placement.Resources{cs.rps[0]: cs.req.Resources}))
	}}
	watched, err := placement.NewClaimer(c, placement.Owner{})
	require.NoError(t, err)
	s, err := placement.NewScheduler(watched, cs.sweepTargets(nil))
	require.NoError(t, err)

	rep, err := s.Sweep(ctx, 0)
	require.NoError(t, err)
	assert.Equal(t, []string{id}, rep.Young, "the claim moved while Sweep looked")
	assert.Empty(t, rep.Kept)
	assert.True(t, exists(t, cs.fakes[0], id))
	assert.True(t, exists(t, cs.fakes[1], id))

	rep, err = s.Sweep(ctx, 0)
	require.NoError(t, err)
	assert.Equal(t, map[string]string{id: cs.rps[0]}, rep.Kept, "settled where the claim went")
	assert.False(t, exists(t, cs.fakes[1], id))
}
