package placement_test

import (
	"context"
	"errors"
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

// afterSpawn is a driver that runs a hook after each successful Spawn,
// before the Scheduler confirms its claim: the hook does to Placement
// what a concurrent scheduler would.
type afterSpawn struct {
	hypervisor.Lifecycle
	hook func(id string)
}

func (a afterSpawn) Spawn(ctx context.Context, spec hypervisor.InstanceSpec) (hypervisor.Instance, error) {
	inst, err := a.Lifecycle.Spawn(ctx, spec)
	if err == nil {
		a.hook(spec.ID)
	}
	return inst, err
}

// exists reports whether drv has instance id.
func exists(t *testing.T, drv hypervisor.Lifecycle, id string) bool {
	t.Helper()
	_, err := drv.Info(context.WithoutCancel(t.Context()), id)
	if errors.Is(err, hypervisor.ErrNotFound) {
		return false
	}
	require.NoError(t, err)
	return true
}

// confirmSetup is n bare providers of a trait of their own and a fake
// driver for each (its host); scheduler makes a Scheduler of one of them.
type confirmSetup struct {
	cl    *placement.Claimer
	rps   []string
	fakes []*hypervisortest.Fake
	req   placement.Request
}

func newConfirmSetup(t *testing.T, n, vcpus int) *confirmSetup {
	t.Helper()
	c, _ := newClient(t)
	trait := placement.CustomTrait(testenv.UniqueName("confirm"))
	cs := &confirmSetup{rps: newBareProviders(t, c, n, trait, vcpus)}
	var err error
	cs.cl, err = placement.NewClaimer(c, placement.Owner{})
	require.NoError(t, err)
	for range n {
		cs.fakes = append(cs.fakes, hypervisortest.NewFake(hypervisortest.WithImages(testenv.EngineBusybox)))
	}
	cs.req = placement.Request{Resources: placement.Resources{placement.VCPU: 1}, Required: []string{trait}}
	return cs
}

// scheduler returns a Scheduler with opts whose one target is provider
// i, its fake driver wrapped so that hook runs after each spawn.
func (cs *confirmSetup) scheduler(t *testing.T, i int, hook func(id string), opts ...placement.SchedulerOption) *placement.Scheduler {
	t.Helper()
	s, err := placement.NewScheduler(cs.cl, []placement.Target{{
		ProviderUUID: cs.rps[i], Name: cs.rps[i], Driver: afterSpawn{Lifecycle: cs.fakes[i], hook: hook},
	}}, opts...)
	require.NoError(t, err)
	return s
}

// TestPlaceClaimsAgainWhenAllocationsVanish empties the consumer's
// allocations between the spawn and the check after it, as Placement
// does when the request that lost a race for a new consumer deletes the
// consumer (which hides the winner's allocations): the Scheduler claims
// again and keeps its instance; it does not give way to a claim that
// does not exist.
func TestPlaceClaimsAgainWhenAllocationsVanish(t *testing.T) {
	t.Parallel()
	cs := newConfirmSetup(t, 1, 4)
	ctx := t.Context()
	s := cs.scheduler(t, 0, func(id string) {
		held, err := cs.cl.Allocations(ctx, id)
		assert.NoError(t, err)
		assert.Contains(t, held, cs.rps[0], "the claim before the hook")
		assert.NoError(t, cs.cl.Release(ctx, id))
	})
	id := placement.NewUUID()
	d, err := s.Place(ctx, busyboxSpec(id), cs.req)
	require.NoError(t, err, "the instance is kept")
	assert.Equal(t, cs.rps[0], d.ProviderUUID)
	assert.True(t, exists(t, cs.fakes[0], id), "the instance runs")
	held, err := cs.cl.Allocations(ctx, id)
	require.NoError(t, err)
	assert.Equal(t, map[string]placement.Resources{cs.rps[0]: cs.req.Resources}, held, "claimed again where it runs")
}

// TestPlaceGivesWayToReplacingClaim replaces the consumer's allocations
// with a claim on another provider between the spawn and the check: the
// Scheduler destroys its instance and reports ErrAlreadyClaimed; the
// other claim stays.
func TestPlaceGivesWayToReplacingClaim(t *testing.T) {
	t.Parallel()
	cs := newConfirmSetup(t, 2, 4)
	ctx := t.Context()
	other := map[string]placement.Resources{cs.rps[1]: cs.req.Resources}
	s := cs.scheduler(t, 0, func(id string) {
		assert.NoError(t, cs.cl.Release(ctx, id))
		assert.NoError(t, cs.cl.Claim(ctx, id, other))
	})
	id := placement.NewUUID()
	_, err := s.Place(ctx, busyboxSpec(id), cs.req)
	require.ErrorIs(t, err, placement.ErrAlreadyClaimed)
	assert.False(t, exists(t, cs.fakes[0], id), "the instance spawned here is gone")
	held, err := cs.cl.Allocations(ctx, id)
	require.NoError(t, err)
	assert.Equal(t, other, held, "the other claim stays")
}

// TestPlaceDestroysWhenClaimCannotBeMadeAgain empties the consumer's
// allocations after the spawn and takes the provider's capacity: the
// claim cannot be made again, so the instance is destroyed and Place
// reports ErrConflict; nothing stays allocated to it.
func TestPlaceDestroysWhenClaimCannotBeMadeAgain(t *testing.T) {
	t.Parallel()
	cs := newConfirmSetup(t, 1, 2)
	ctx := t.Context()
	filler := placement.NewUUID()
	t.Cleanup(func() { _ = cs.cl.Release(context.WithoutCancel(ctx), filler) })
	s := cs.scheduler(t, 0, func(id string) {
		assert.NoError(t, cs.cl.Release(ctx, id))
		assert.NoError(t, cs.cl.Claim(ctx, filler, map[string]placement.Resources{cs.rps[0]: {placement.VCPU: 2}}))
	})
	id := placement.NewUUID()
	_, err := s.Place(ctx, busyboxSpec(id), cs.req)
	require.ErrorIs(t, err, placement.ErrConflict)
	require.NotErrorIs(t, err, placement.ErrAlreadyClaimed)
	assert.False(t, exists(t, cs.fakes[0], id), "the instance without a claim is gone")
	held, err := cs.cl.Allocations(ctx, id)
	require.NoError(t, err)
	assert.Empty(t, held)
}

// TestPlaceBothFindNoAllocations has two schedulers, each with a host of
// its own, spawn the same instance and both find its allocations gone
// when they check (the worst outcome of the race for a new consumer):
// both claim again at about the same time, and exactly one keeps the
// instance, where its allocations are; the other gives way. Several
// rounds, so that the interleavings of the two checks vary.
func TestPlaceBothFindNoAllocations(t *testing.T) {
	t.Parallel()
	cs := newConfirmSetup(t, 2, 16)
	ctx := t.Context()
	var (
		bSpawned = make(chan struct{}, 1)
		b        *placement.Scheduler
		bErr     error
		wg       sync.WaitGroup
	)
	a := cs.scheduler(t, 0, func(id string) {
		// A has spawned; its claim goes, and B places the same
		// instance on its own host (claiming it anew) and loses its
		// claim too. Then A's and B's checks run together.
		assert.NoError(t, cs.cl.Release(ctx, id))
		bDone := make(chan struct{})
		wg.Go(func() {
			defer close(bDone)
			_, bErr = b.Place(ctx, busyboxSpec(id), cs.req)
		})
		select {
		case <-bSpawned:
		case <-bDone: // B failed before its spawn: the checks below say so
		}
	})
	b = cs.scheduler(t, 1, func(id string) {
		assert.NoError(t, cs.cl.Release(ctx, id))
		bSpawned <- struct{}{}
	})
	for round := range 4 {
		id := placement.NewUUID()
		_, aErr := a.Place(ctx, busyboxSpec(id), cs.req)
		wg.Wait()
		for _, err := range []error{aErr, bErr} {
			if err != nil {
				require.ErrorIs(t, err, placement.ErrAlreadyClaimed, "round %d", round)
			}
		}
		onA, onB := exists(t, cs.fakes[0], id), exists(t, cs.fakes[1], id)
		require.True(t, onA != onB, "round %d: the instance runs on exactly one host (A %v, B %v; errors %v, %v)", round, onA, onB, aErr, bErr)
		assert.Equal(t, onA, aErr == nil, "round %d: A reports what it kept", round)
		assert.Equal(t, onB, bErr == nil, "round %d: B reports what it kept", round)
		where := cs.rps[0]
		if onB {
			where = cs.rps[1]
		}
		held, err := cs.cl.Allocations(ctx, id)
		require.NoError(t, err)
		assert.Equal(t, map[string]placement.Resources{where: cs.req.Resources}, held, "round %d: allocated where it runs", round)
		t.Logf("round %d: kept by %s", round, map[bool]string{true: "A", false: "B"}[onA])
	}
}

// TestPlaceGivesWayToLateReplacingClaim replaces the consumer's
// allocations with a claim on another provider 200 ms after the spawn,
// as a concurrent claim that Placement answered late does: the Scheduler
// reads its claim back only once the claim has settled (2 s here), finds
// the other claim, destroys its instance and reports ErrAlreadyClaimed.
// Read at once, it would have kept an instance the other claim's
// scheduler runs too.
func TestPlaceGivesWayToLateReplacingClaim(t *testing.T) {
	t.Parallel()
	cs := newConfirmSetup(t, 2, 4)
	ctx := t.Context()
	other := map[string]placement.Resources{cs.rps[1]: cs.req.Resources}
	var late sync.WaitGroup
	s := cs.scheduler(t, 0, func(id string) {
		late.Go(func() {
			time.Sleep(200 * time.Millisecond)
			assert.NoError(t, cs.cl.Release(ctx, id))
			assert.NoError(t, cs.cl.Claim(ctx, id, other))
		})
	}, placement.WithClaimSettle(2*time.Second))
	id := placement.NewUUID()
	_, err := s.Place(ctx, busyboxSpec(id), cs.req)
	late.Wait()
	require.ErrorIs(t, err, placement.ErrAlreadyClaimed)
	assert.False(t, exists(t, cs.fakes[0], id), "the instance spawned here is gone")
	held, err := cs.cl.Allocations(ctx, id)
	require.NoError(t, err)
	assert.Equal(t, other, held, "the other claim stays")
}
