package hypervisortest

import (
	"slices"
	"sync"
	"sync/atomic"
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
// instance while spawns run. The suite cannot see when a Spawn returns,
// only when its goroutine notes it afterwards (under load, much later), so
// it checks what it can know: a reconcile never breaks a spawn in
// progress (every spawn succeeds, and every instance the reconcile did not
// remove runs), and an instance whose spawn had certainly returned before
// the reconcile began (its goroutine had noted it) is unknown and removed.
func testReconcileDuringSpawns(t *testing.T, e *agentEnv) {
	ctx := t.Context()
	const n = 4
	specs := make([]hypervisor.InstanceSpec, n)
	errs := make([]error, n)
	returned := make([]atomic.Bool, n)
	var wg sync.WaitGroup
	started := make(chan struct{})
	for i := range specs {
		specs[i] = e.spec("rec-spawn")
		e.cleanupDestroy(t, specs[i].ID)
		wg.Go(func() {
			<-started
			_, errs[i] = e.d.Spawn(ctx, specs[i])
			returned[i].Store(true)
		})
	}
	close(started)
	// Begin the reconcile once at least one instance is visible.
	deadline := time.Now().Add(e.stateTimeout)
	for len(e.listIDs(t, hypervisor.ListOptions{Labels: map[string]string{labelRun: e.run}})) == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	done := make([]bool, n) // returned before the reconcile began, certainly
	for i := range done {
		done[i] = returned[i].Load()
	}
	rep, err := e.a.Reconcile(ctx, hypervisor.ReconcileOptions{Policy: hypervisor.ReconcileRemove})
	require.NoError(t, err)
	wg.Wait()
	removed := map[string]bool{}
	for _, id := range rep.Removed {
		removed[id] = true
	}
	for i, s := range specs {
		require.NoError(t, errs[i], "spawn of %s during a reconcile", s.ID)
		if done[i] {
			assert.True(t, removed[s.ID], "%s, spawned before the reconcile began and unknown, is removed", s.ID)
		}
		if removed[s.ID] {
			_, err := e.d.Info(ctx, s.ID)
			requireClass(t, err, hypervisor.ErrNotFound, s.ID, "removed by the reconcile")
			continue
		}
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

// testInterruptedSnapshot leaves an instance paused by a snapshot whose
// agent died, next to an instance a user paused: report-only finds it
// and changes nothing; the stop policy, and then Resume, unpause it and
// report it Interrupted, and leave the user's pause alone.
func testInterruptedSnapshot(t *testing.T, e *agentEnv) {
	if e.ah.InterruptSnapshot == nil {
		t.Skip("the harness cannot interrupt a snapshot")
	}
	ctx := t.Context()
	snap := e.spec("int-snap")
	user := e.spec("int-user")
	e.spawn(t, snap)
	e.spawn(t, user)
	require.NoError(t, e.d.Pause(ctx, user.ID))
	mine := map[string]bool{snap.ID: true, user.ID: true}
	known := []string{snap.ID, user.ID}

	e.ah.InterruptSnapshot(t, snap.ID)
	// Let "created after the reconcile began" not apply to these.
	time.Sleep(10 * time.Millisecond)
	rep, err := e.a.Reconcile(ctx, hypervisor.ReconcileOptions{Known: known})
	require.NoError(t, err)
	assert.Equal(t, []string{snap.ID}, onlyOf(rep.Interrupted, mine), "report only finds it")
	// List, which takes no instance's turn: a backend may recover an
	// instance in any call that does (Info).
	assert.Equal(t, hypervisor.StatePaused, e.listState(t, snap.ID), "report only changes nothing")

	rep, err = e.a.Reconcile(ctx, hypervisor.ReconcileOptions{Known: known, Policy: hypervisor.ReconcileStop})
	require.NoError(t, err)
	assert.Equal(t, []string{snap.ID}, onlyOf(rep.Interrupted, mine))
	assert.Empty(t, onlyOf(rep.Stopped, mine), "known instances are not stopped")
	assert.Equal(t, hypervisor.StateRunning, e.info(t, snap.ID).State, "the snapshot's pause is undone")
	assert.Equal(t, hypervisor.StatePaused, e.info(t, user.ID).State, "a user's pause stays")
	rep, err = e.a.Reconcile(ctx, hypervisor.ReconcileOptions{Known: known, Policy: hypervisor.ReconcileStop})
	require.NoError(t, err)
	assert.Empty(t, onlyOf(rep.Interrupted, mine), "nothing left to recover")

	e.ah.InterruptSnapshot(t, snap.ID)
	res, err := e.a.Resume(ctx, hypervisor.ResumeOptions{})
	require.NoError(t, err)
	assert.Equal(t, []string{snap.ID}, onlyOf(res.Interrupted, mine), "Resume recovers too")
	assert.Equal(t, hypervisor.StateRunning, e.info(t, snap.ID).State)
	assert.Equal(t, hypervisor.StatePaused, e.info(t, user.ID).State, "a user's pause stays")
}

// listState returns the state List reports for instance id.
func (e *agentEnv) listState(t *testing.T, id string) hypervisor.State {
	t.Helper()
	list, err := e.d.List(t.Context(), hypervisor.ListOptions{Labels: map[string]string{labelRun: e.run}})
	require.NoError(t, err, "List")
	for _, inst := range list {
		if inst.ID == id {
			return inst.State
		}
	}
	require.Failf(t, "not listed", "%s is not listed", id)
	return hypervisor.StateUnknown
}
