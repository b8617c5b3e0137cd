package placement_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dockervisor/dockervisor/hypervisor"
	"github.com/dockervisor/dockervisor/internal/testenv"
	"github.com/dockervisor/dockervisor/placement"
)

// TestClaimSpawnRelease: a claim is visible while the instance runs, a
// failed spawn removes its claim, Destroy releases it, and an instance
// can hold only one claim.
func TestClaimSpawnRelease(t *testing.T) {
	t.Parallel()
	c, _ := newClient(t)
	d := newDriver(t, testenv.MustHaveEngines(t)[1], testenv.UniqueName("node-"))
	r := newReporter(t, c, d, placement.CustomTrait(testenv.UniqueName("t")))
	ctx := t.Context()
	st, err := r.Report(ctx)
	require.NoError(t, err)
	rp := st.ProviderUUID
	cl, err := placement.NewClaimer(c, placement.Owner{})
	require.NoError(t, err)
	res := placement.InstanceResources(1, 64, 0)
	alloc := map[string]placement.Resources{rp: res}

	id := placement.NewUUID()
	inst, err := placement.SpawnClaimed(ctx, cl, d, alloc, busyboxSpec(id))
	require.NoError(t, err)
	assert.Equal(t, hypervisor.StateRunning, inst.State)
	held, err := cl.Allocations(ctx, id)
	require.NoError(t, err)
	assert.Equal(t, alloc, held)

	// A second claim for the same instance is refused, the first kept.
	err = cl.Claim(ctx, id, alloc)
	require.ErrorIs(t, err, placement.ErrAlreadyClaimed)
	_, err = placement.SpawnClaimed(ctx, cl, d, alloc, busyboxSpec(id))
	require.ErrorIs(t, err, placement.ErrAlreadyClaimed)

	// A spawn that fails (missing image) leaves no claim behind.
	bad := placement.NewUUID()
	spec := busyboxSpec(bad)
	spec.Image = "dockervisor-test/missing:1"
	_, err = placement.SpawnClaimed(ctx, cl, d, alloc, spec)
	require.ErrorIs(t, err, hypervisor.ErrImageNotFound)
	held, err = cl.Allocations(ctx, bad)
	require.NoError(t, err)
	assert.Empty(t, held)

	// A claim beyond capacity is a conflict and changes nothing.
	huge := map[string]placement.Resources{rp: {placement.VCPU: st.Inventory[placement.VCPU].Total}}
	for range 17 { // 16x overcommit, then one more
		if err = cl.Claim(ctx, placement.NewUUID(), huge); err != nil {
			break
		}
	}
	require.ErrorIs(t, err, placement.ErrConflict)
	require.NotErrorIs(t, err, placement.ErrAlreadyClaimed)

	// Bad input is refused before Placement.
	require.ErrorIs(t, cl.Claim(ctx, "not-a-uuid", alloc), placement.ErrInvalidArgument)
	require.ErrorIs(t, cl.Claim(ctx, placement.NewUUID(), nil), placement.ErrInvalidArgument)

	require.NoError(t, placement.DestroyReleased(ctx, cl, d, id))
	held, err = cl.Allocations(ctx, id)
	require.NoError(t, err)
	assert.Empty(t, held)
	require.NoError(t, placement.DestroyReleased(ctx, cl, d, id), "idempotent")
}

// TestReconcile makes the three kinds of drift for real (a claim without
// instance, an instance without claim, a claim of the wrong size),
// reports them, fixes them, and finds nothing afterwards.
func TestReconcile(t *testing.T) {
	t.Parallel()
	c, _ := newClient(t)
	d := newDriver(t, testenv.MustHaveEngines(t)[0], testenv.UniqueName("node-"))
	r := newReporter(t, c, d, placement.CustomTrait(testenv.UniqueName("t")))
	ctx := t.Context()
	st, err := r.Report(ctx)
	require.NoError(t, err)
	rp := st.ProviderUUID
	cl, err := placement.NewClaimer(c, placement.Owner{})
	require.NoError(t, err)

	good, orphan, unclaimed, wrong := placement.NewUUID(), placement.NewUUID(), placement.NewUUID(), placement.NewUUID()
	flavor := placement.InstanceResources(1, 64, 0)
	_, err = placement.SpawnClaimed(ctx, cl, d, map[string]placement.Resources{rp: flavor}, busyboxSpec(good))
	require.NoError(t, err)
	require.NoError(t, cl.Claim(ctx, orphan, map[string]placement.Resources{rp: flavor}))
	_, err = d.Spawn(ctx, busyboxSpec(unclaimed))
	require.NoError(t, err)
	_, err = placement.SpawnClaimed(ctx, cl, d, map[string]placement.Resources{rp: {placement.VCPU: 2, placement.MemoryMB: 64}}, busyboxSpec(wrong))
	require.NoError(t, err)
	_, err = d.Spawn(ctx, hypervisor.InstanceSpec{ID: "not-a-uuid", Image: testenv.EngineBusybox, Command: []string{"sleep", "3600"}})
	require.NoError(t, err)

	drift, err := cl.Reconcile(ctx, d, rp, placement.ReportOnly)
	require.NoError(t, err)
	assert.Equal(t, placement.Drift{
		Orphaned:      []string{orphan},
		Unclaimed:     []string{unclaimed},
		Mismatched:    []string{wrong},
		Unaccountable: []string{"not-a-uuid"},
	}, drift)
	held, err := placement.ProviderAllocations(ctx, c, rp)
	require.NoError(t, err)
	assert.Len(t, held, 3, "ReportOnly changes nothing")

	drift, err = cl.Reconcile(ctx, d, rp, placement.Fix)
	require.NoError(t, err)
	assert.True(t, drift.Fixed)
	held, err = placement.ProviderAllocations(ctx, c, rp)
	require.NoError(t, err)
	assert.Equal(t, map[string]placement.Resources{good: flavor, unclaimed: flavor, wrong: flavor}, held)

	drift, err = cl.Reconcile(ctx, d, rp, placement.ReportOnly)
	require.NoError(t, err)
	assert.Equal(t, placement.Drift{Unaccountable: []string{"not-a-uuid"}}, drift)
}
