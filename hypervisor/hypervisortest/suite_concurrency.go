package hypervisortest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dockervisor/dockervisor/hypervisor"
)

func testConcurrency(t *testing.T, e *env) {
	if !e.caps.Pause {
		t.Skip("driver cannot pause")
	}
	a, b := e.spec("conc-a"), e.spec("conc-b")
	e.spawn(t, a)
	e.spawn(t, b)
	ctx := t.Context()
	const workers, rounds = 4, 4
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for r := range rounds {
				// Every call is valid or a no-op in the states the others
				// can leave the instance in, so none may fail.
				assert.NoError(t, e.d.Pause(ctx, a.ID), "worker %d round %d: Pause", w, r)
				info, err := e.d.Info(ctx, a.ID)
				if assert.NoError(t, err, "Info") {
					assert.Contains(t, []hypervisor.State{stR, stP}, info.State)
					assert.Positive(t, info.PID)
				}
				assert.NoError(t, e.d.Unpause(ctx, a.ID), "worker %d round %d: Unpause", w, r)
				if w%2 == 0 {
					assert.NoError(t, e.d.Pause(ctx, b.ID), "Pause b")
				} else {
					assert.NoError(t, e.d.Unpause(ctx, b.ID), "Unpause b")
				}
				_, err = e.d.Info(ctx, b.ID)
				assert.NoError(t, err, "Info b")
				_, err = e.d.List(ctx, hypervisor.ListOptions{Labels: map[string]string{labelRun: e.run}})
				assert.NoError(t, err, "List")
			}
		})
	}
	wg.Wait()
	require.NoError(t, e.d.Unpause(ctx, a.ID))
	require.NoError(t, e.d.Unpause(ctx, b.ID))
	assert.Equal(t, stR, e.info(t, a.ID).State)
	assert.Equal(t, stR, e.info(t, b.ID).State)
}

// testReadsDuringTransitions checks that Info, ConsoleOutput and
// InstanceStats are serialised with the transitions of their instance: a
// read that ran in the middle of a hard reboot would see the instance
// stopped, or sample a process that is gone. Each kind of read loops in
// its own goroutine while the instance reboots.
func testReadsDuringTransitions(t *testing.T, e *env) {
	if !e.caps.Reboot {
		t.Skip("driver cannot reboot")
	}
	spec := e.spec("reads")
	e.spawn(t, spec)
	ctx := t.Context()
	const reboots = 4
	done := make(chan struct{})
	var wg sync.WaitGroup
	infoRunning := func() error {
		info, err := e.d.Info(ctx, spec.ID)
		if err == nil && (info.State != stR || info.PID <= 0) {
			err = fmt.Errorf("state %s, PID %d: want running with a PID", info.State, info.PID)
		}
		return err
	}
	read := func(what string, fn func() error) {
		wg.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				if !assert.NoError(t, fn(), "%s during a reboot", what) {
					return
				}
			}
		})
	}
	// Several Info readers, since one Info may take a while (a backend
	// may sample usage over a second) and a reboot leaves the instance
	// stopped only briefly.
	for range 3 {
		read("Info", infoRunning)
	}
	read("ConsoleOutput", func() error {
		_, err := e.d.ConsoleOutput(ctx, spec.ID, hypervisor.ConsoleOptions{TailLines: 1})
		return err
	})
	if e.caps.InstanceStats {
		read("InstanceStats", func() error {
			_, err := e.d.InstanceStats(ctx, spec.ID)
			return err
		})
	}
	for i := range reboots {
		assert.NoError(t, e.d.Reboot(ctx, spec.ID, hypervisor.RebootOptions{Hard: true}), "reboot %d", i)
	}
	close(done)
	wg.Wait()
	assert.Equal(t, stR, e.info(t, spec.ID).State)
}

func testContext(t *testing.T, e *env) {
	spec := e.spec("ctx")
	e.spawn(t, spec)
	id := spec.ID
	before := e.info(t, id)

	cancelled, cancel := context.WithCancel(t.Context())
	cancel()
	check := func(err error, what string) {
		t.Helper()
		require.ErrorIs(t, err, context.Canceled, what)
		_, ok := errors.AsType[*hypervisor.OpError](err)
		assert.True(t, ok, "%s: error %q is not a *hypervisor.OpError", what, err)
	}

	other := e.spec("ctx-new")
	e.cleanupDestroy(t, other.ID)
	_, err := e.d.Spawn(cancelled, other)
	check(err, "Spawn")
	_, err = e.d.Info(t.Context(), other.ID)
	requireClass(t, err, hypervisor.ErrNotFound, other.ID, "Info after a cancelled Spawn")

	_, err = e.d.Info(cancelled, id)
	check(err, "Info")
	_, err = e.d.List(cancelled, hypervisor.ListOptions{})
	check(err, "List")
	check(e.d.PowerOff(cancelled, id, hypervisor.StopOptions{}), "PowerOff")
	check(e.d.Reboot(cancelled, id, hypervisor.RebootOptions{Hard: true}), "Reboot")
	check(e.d.Destroy(cancelled, id), "Destroy")
	if e.caps.Pause {
		check(e.d.Pause(cancelled, id), "Pause")
	}
	if e.caps.SoftDelete {
		check(e.d.SoftDelete(cancelled, id), "SoftDelete")
	}

	after := e.info(t, id)
	assert.Equal(t, stR, after.State)
	assert.Equal(t, before.PID, after.PID)
	assert.True(t, after.StartedAt.Equal(before.StartedAt), "StartedAt changed")
}
