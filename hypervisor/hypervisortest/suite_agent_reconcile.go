package hypervisortest

import (
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dockervisor/dockervisor/hypervisor"
)

// ownIDs keeps the IDs of rep's slices that this env created (the run's
// IDs), so that other instances of a shared backend do not disturb the
// checks.
func onlyOf(ids []string, mine map[string]bool) []string {
	var out []string
	for _, id := range ids {
		if mine[id] {
			out = append(out, id)
		}
	}
	return out
}

func testReconcile(t *testing.T, e *agentEnv) {
	ctx := t.Context()
	known := e.spec("rec-known")
	unknown := e.spec("rec-unknown")
	e.spawn(t, known)
	e.spawn(t, unknown)
	mine := map[string]bool{known.ID: true, unknown.ID: true}
	var half hypervisor.InstanceSpec
	if e.ah.MakeHalfSpawned != nil {
		half = e.spec("rec-half")
		e.cleanupDestroy(t, half.ID)
		e.ah.MakeHalfSpawned(t, half)
		mine[half.ID] = true
	}
	orphan := newID("rec-orphan")
	if e.ah.MakeOrphanRecord != nil {
		e.ah.MakeOrphanRecord(t, orphan)
		mine[orphan] = true
	}
	missing := newID("rec-missing")
	mine[missing] = true
	// Let "created after the reconcile began" not apply to these.
	time.Sleep(10 * time.Millisecond)

	opts := hypervisor.ReconcileOptions{Known: []string{known.ID, missing}}
	check := func(rep hypervisor.ReconcileReport, what string) {
		t.Helper()
		assert.Equal(t, []string{unknown.ID}, onlyOf(rep.Unknown, mine), "Unknown, %s", what)
		assert.Equal(t, []string{missing}, onlyOf(rep.Missing, mine), "Missing, %s", what)
		if half.ID != "" {
			assert.Equal(t, []string{half.ID}, onlyOf(rep.HalfSpawned, mine), "HalfSpawned, %s", what)
		}
		if e.ah.MakeOrphanRecord != nil {
			assert.Equal(t, []string{orphan}, onlyOf(rep.Orphaned, mine), "Orphaned, %s", what)
		}
		assert.Empty(t, onlyOf(rep.Busy, mine), "Busy, %s", what)
	}

	// Report only: twice, nothing changes.
	for i := range 2 {
		rep, err := e.a.Reconcile(ctx, opts)
		require.NoError(t, err)
		check(rep, "report only")
		assert.Empty(t, rep.Stopped, "report only stops nothing")
		assert.Empty(t, rep.Removed, "report only removes nothing")
		assert.Equal(t, hypervisor.StateRunning, e.info(t, unknown.ID).State, "report %d", i)
	}
	if half.ID != "" {
		e.info(t, half.ID)
	}
	if e.ah.MakeOrphanRecord != nil {
		assert.True(t, e.ah.OrphanRecordExists(t, orphan))
	}

	// Stop: the unknown instance is stopped, kept; again, nothing more.
	opts.Policy = hypervisor.ReconcileStop
	rep, err := e.a.Reconcile(ctx, opts)
	require.NoError(t, err)
	check(rep, "stop")
	assert.Equal(t, []string{unknown.ID}, onlyOf(rep.Stopped, mine))
	assert.Equal(t, hypervisor.StateShutdown, e.info(t, unknown.ID).State)
	rep, err = e.a.Reconcile(ctx, opts)
	require.NoError(t, err)
	assert.Empty(t, onlyOf(rep.Stopped, mine), "a second stop reconcile stops nothing")

	// Remove: unknown and half-spawned instances and orphan records go.
	opts.Policy = hypervisor.ReconcileRemove
	rep, err = e.a.Reconcile(ctx, opts)
	require.NoError(t, err)
	check(rep, "remove")
	want := []string{unknown.ID}
	if half.ID != "" {
		want = append(want, half.ID)
	}
	if e.ah.MakeOrphanRecord != nil {
		want = append(want, orphan)
	}
	slices.Sort(want)
	assert.Equal(t, want, onlyOf(rep.Removed, mine))
	for _, id := range []string{unknown.ID, half.ID} {
		if id == "" {
			continue
		}
		_, err := e.d.Info(ctx, id)
		requireClass(t, err, hypervisor.ErrNotFound, id, "removed by reconcile")
	}
	if e.ah.MakeOrphanRecord != nil {
		assert.False(t, e.ah.OrphanRecordExists(t, orphan), "orphan record removed")
	}
	assert.Equal(t, hypervisor.StateRunning, e.info(t, known.ID).State, "the known instance is untouched")

	// Idempotent: nothing left to do.
	rep, err = e.a.Reconcile(ctx, opts)
	require.NoError(t, err)
	assert.Empty(t, onlyOf(rep.Unknown, mine))
	assert.Empty(t, onlyOf(rep.HalfSpawned, mine))
	assert.Empty(t, onlyOf(rep.Orphaned, mine))
	assert.Empty(t, onlyOf(rep.Removed, mine))
	assert.Equal(t, []string{missing}, onlyOf(rep.Missing, mine))

	// Bad input.
	_, err = e.a.Reconcile(ctx, hypervisor.ReconcileOptions{Policy: 99})
	requireClass(t, err, hypervisor.ErrInvalidArgument, "")
	_, err = e.a.Reconcile(ctx, hypervisor.ReconcileOptions{Known: []string{"../x"}})
	requireClass(t, err, hypervisor.ErrInvalidArgument, "")
}

// testReconcileDuringSpawns runs a removing reconcile that knows no
// instance while spawns run: an instance whose spawn had not returned
// when the reconcile began must survive it (and its spawn succeed).
func testReconcileDuringSpawns(t *testing.T, e *agentEnv) {
	ctx := t.Context()
	const n = 4
	specs := make([]hypervisor.InstanceSpec, n)
	returned := make([]time.Time, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	started := make(chan struct{})
	for i := range specs {
		specs[i] = e.spec("rec-spawn")
		e.cleanupDestroy(t, specs[i].ID)
		wg.Go(func() {
			<-started
			_, errs[i] = e.d.Spawn(ctx, specs[i])
			returned[i] = time.Now()
		})
	}
	close(started)
	// Begin the reconcile once at least one instance is visible.
	deadline := time.Now().Add(e.stateTimeout)
	for len(e.listIDs(t, hypervisor.ListOptions{Labels: map[string]string{labelRun: e.run}})) == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	began := time.Now()
	rep, err := e.a.Reconcile(ctx, hypervisor.ReconcileOptions{Policy: hypervisor.ReconcileRemove})
	require.NoError(t, err)
	wg.Wait()
	removed := map[string]bool{}
	for _, id := range rep.Removed {
		removed[id] = true
	}
	for i, s := range specs {
		if removed[s.ID] {
			assert.True(t, returned[i].Before(began), "%s was removed although its spawn returned at %v, after the reconcile began at %v", s.ID, returned[i], began)
			continue
		}
		require.NoError(t, errs[i], "spawn of %s during a reconcile", s.ID)
		assert.Equal(t, hypervisor.StateRunning, e.info(t, s.ID).State, "%s survives the reconcile", s.ID)
	}
	t.Logf("reconcile during spawns: busy %v, removed %v", rep.Busy, rep.Removed)
}

func testResume(t *testing.T, e *agentEnv) {
	ctx := t.Context()
	off := e.spec("resume-off")
	e.spawn(t, off)
	require.NoError(t, e.d.PowerOff(ctx, off.ID, hypervisor.StopOptions{Timeout: stopTimeout}))
	del := e.spec("resume-deleted")
	e.spawn(t, del)
	require.NoError(t, e.d.SoftDelete(ctx, del.ID))
	created := e.spec("resume-created")
	e.cleanupDestroy(t, created.ID)
	_, err := e.a.SpawnWithOptions(ctx, created, hypervisor.SpawnOptions{CreateOnly: true})
	require.NoError(t, err)
	run := e.spec("resume-running")
	e.spawn(t, run)
	pid := e.info(t, run.ID).PID
	mine := map[string]bool{off.ID: true, del.ID: true, created.ID: true, run.ID: true}

	var crashed string
	if e.h.Crash != nil {
		c := e.spec("resume-crashed")
		e.spawn(t, c)
		require.NoError(t, e.a.Resize(ctx, c.ID, hypervisor.Flavor{VCPUs: 2, MemoryMB: 80}))
		e.h.Crash(t, c.ID)
		e.waitState(t, c.ID, hypervisor.StateCrashed)
		crashed = c.ID
		mine[c.ID] = true
	}
	rep, err := e.a.Resume(ctx, hypervisor.ResumeOptions{})
	require.NoError(t, err)
	var want []string
	if crashed != "" {
		want = []string{crashed}
		info := e.info(t, crashed)
		assert.Equal(t, hypervisor.StateRunning, info.State, "a crashed instance intended to run is resumed")
		e.requireFlavor(t, crashed, hypervisor.Flavor{VCPUs: 2, MemoryMB: 80}, "resumed")
	}
	assert.Equal(t, want, onlyOf(rep.Resumed, mine))
	assert.Empty(t, rep.Failed)
	assert.Equal(t, hypervisor.StateShutdown, e.info(t, off.ID).State, "powered off stays off")
	assert.Equal(t, hypervisor.StateSoftDeleted, e.info(t, del.ID).State, "soft-deleted stays")
	assert.Equal(t, hypervisor.StateCreated, e.info(t, created.ID).State, "created stays")
	assert.Equal(t, pid, e.info(t, run.ID).PID, "running is untouched")

	rep, err = e.a.Resume(ctx, hypervisor.ResumeOptions{})
	require.NoError(t, err)
	assert.Empty(t, onlyOf(rep.Resumed, mine), "a second resume has nothing to do")

	_, err = e.a.Resume(ctx, hypervisor.ResumeOptions{Only: []string{"../x"}})
	requireClass(t, err, hypervisor.ErrInvalidArgument, "")
}
