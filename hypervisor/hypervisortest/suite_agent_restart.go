package hypervisortest

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dockervisor/dockervisor/hypervisor"
)

func testEngineRestart(t *testing.T, e *agentEnv) {
	if e.ah.RestartEngine == nil {
		t.Skip("AgentHarness.RestartEngine is nil")
	}
	ctx := t.Context()
	run, off, paused := e.spec("rs-run"), e.spec("rs-off"), e.spec("rs-paused")
	e.spawn(t, run)
	e.spawn(t, off)
	e.spawn(t, paused)
	require.NoError(t, e.d.Pause(ctx, paused.ID))
	f := hypervisor.Flavor{VCPUs: 2, MemoryMB: 80}
	require.NoError(t, e.a.Resize(ctx, run.ID, f))
	require.NoError(t, e.d.PowerOff(ctx, off.ID, hypervisor.StopOptions{Timeout: stopTimeout}))
	created := e.spec("rs-created")
	e.cleanupDestroy(t, created.ID)
	_, err := e.a.SpawnWithOptions(ctx, created, hypervisor.SpawnOptions{CreateOnly: true})
	require.NoError(t, err)

	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	evs, errc := prompt(e.a.EventsSince(sctx, hypervisor.EventOptions{}))
	time.Sleep(100 * time.Millisecond)
	before := time.Now()
	e.ah.RestartEngine(t)

	// The stream ends with an ErrUnavailable error.
	timeout := time.After(e.stateTimeout)
	for done := false; !done; {
		select {
		case _, ok := <-evs:
			if !ok {
				done = true
			}
		case <-timeout:
			t.Fatal("the event stream did not end when the engine restarted")
		}
	}
	requireClass(t, <-errc, hypervisor.ErrUnavailable, "", "end of the stream at an engine restart")

	st := e.info(t, run.ID).State
	assert.True(t, st == hypervisor.StateShutdown || st == hypervisor.StateCrashed, "after an engine restart, running is stopped (%s)", st)
	rep, err := e.a.Resume(ctx, hypervisor.ResumeOptions{})
	require.NoError(t, err)
	mine := map[string]bool{run.ID: true, off.ID: true, created.ID: true, paused.ID: true}
	wantResumed := []string{run.ID, paused.ID} // a paused instance was intended to run too
	slices.Sort(wantResumed)
	assert.Equal(t, wantResumed, onlyOf(rep.Resumed, mine), "resumes the instances intended to run: %+v", rep)
	assert.Empty(t, rep.Failed)
	info := e.info(t, run.ID)
	assert.Equal(t, hypervisor.StateRunning, info.State)
	e.requireFlavor(t, run.ID, f, "resumed after an engine restart")
	assert.Equal(t, hypervisor.StateShutdown, e.info(t, off.ID).State, "powered off stays off")
	assert.Equal(t, hypervisor.StateCreated, e.info(t, created.ID).State, "created stays created")
	rep, err = e.a.Resume(ctx, hypervisor.ResumeOptions{})
	require.NoError(t, err)
	assert.Empty(t, onlyOf(rep.Resumed, mine), "idempotent")

	// A resubscription since before the restart tells why the instance
	// stopped, and sees the resume.
	evs2, errc2 := prompt(e.a.EventsSince(sctx, hypervisor.EventOptions{Since: before}))
	got := e.collect(t, evs2, errc2, run.ID, func(g []hypervisor.Event) bool {
		_, i := find(g, hypervisor.EventStarted, 0)
		return i >= 0
	})
	stop, i := find(got, hypervisor.EventStopped, 0)
	if i < 0 {
		stop, i = find(got, hypervisor.EventCrashed, 0)
	}
	require.GreaterOrEqual(t, i, 0, "a stop event of the restart: %+v", got)
	assert.Equal(t, hypervisor.ReasonEngineStopped, stop.Reason, "reason of a stop by the engine: %+v", stop)
	start, _ := find(got, hypervisor.EventStarted, i)
	assert.Equal(t, hypervisor.ReasonRequested, start.Reason)
	assert.Equal(t, "resume", start.Operation)
}

// testReconcileDuringRestart restarts the engine while reconciles with
// the remove policy run, knowing every instance: each either succeeds or
// fails with ErrUnavailable, and no instance is lost.
func testReconcileDuringRestart(t *testing.T, e *agentEnv) {
	if e.ah.RestartEngine == nil {
		t.Skip("AgentHarness.RestartEngine is nil")
	}
	ctx := t.Context()
	var known []string
	for range 3 {
		s := e.spec("rr")
		e.spawn(t, s)
		known = append(known, s.ID)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	var outcomes []error
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			_, err := e.a.Reconcile(ctx, hypervisor.ReconcileOptions{Known: known, Policy: hypervisor.ReconcileRemove})
			mu.Lock()
			outcomes = append(outcomes, err)
			mu.Unlock()
			if err != nil {
				time.Sleep(20 * time.Millisecond)
			}
		}
	})
	time.Sleep(50 * time.Millisecond)
	e.ah.RestartEngine(t)
	time.Sleep(50 * time.Millisecond)
	close(stop)
	wg.Wait()
	require.NotEmpty(t, outcomes)
	for _, err := range outcomes {
		if err != nil && !errors.Is(err, hypervisor.ErrUnavailable) {
			t.Errorf("reconcile during an engine restart: %v (want nil or ErrUnavailable)", err)
		}
	}
	rep, err := e.a.Reconcile(ctx, hypervisor.ReconcileOptions{Known: known, Policy: hypervisor.ReconcileRemove, Resume: true})
	require.NoError(t, err)
	resumed := slices.Clone(rep.Resumed)
	slices.Sort(resumed)
	want := slices.Clone(known)
	slices.Sort(want)
	assert.Equal(t, want, onlyOf(resumed, map[string]bool{known[0]: true, known[1]: true, known[2]: true}), "reconcile with Resume brings them back")
	for _, id := range known {
		assert.Equal(t, hypervisor.StateRunning, e.info(t, id).State, "%s is not lost", id)
	}
}
