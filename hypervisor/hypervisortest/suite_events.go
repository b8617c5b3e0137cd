package hypervisortest

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dockervisor/dockervisor/hypervisor"
)

func testEvents(t *testing.T, e *env) {
	if !e.caps.Events {
		evs, errc := e.d.Events(t.Context())
		for range evs {
		}
		err := <-errc
		requireUnsupportedOr(t, false, err, hypervisor.ErrNotSupported, "", "Events")
		return
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	evs, errc := e.d.Events(ctx)

	spec := e.spec("events")
	e.spawn(t, spec)
	id := spec.ID
	require.NoError(t, e.d.Pause(t.Context(), id))
	require.NoError(t, e.d.Unpause(t.Context(), id))
	require.NoError(t, e.d.PowerOff(t.Context(), id, hypervisor.StopOptions{Timeout: stopTimeout}))
	want := []hypervisor.EventType{
		hypervisor.EventStarted, hypervisor.EventPaused, hypervisor.EventUnpaused, hypervisor.EventStopped,
	}
	crashes := 0
	if e.h.Crash != nil {
		require.NoError(t, e.d.PowerOn(t.Context(), id))
		e.h.Crash(t, id)
		e.waitState(t, id, stC)
		want = append(want, hypervisor.EventStarted, hypervisor.EventCrashed)
		crashes = 1
	}
	require.NoError(t, e.d.Destroy(t.Context(), id))
	want = append(want, hypervisor.EventDestroyed)

	var got []hypervisor.EventType
	timeout := time.NewTimer(e.stateTimeout)
	defer timeout.Stop()
	for !containsSubsequence(got, want) {
		select {
		case ev, ok := <-evs:
			require.True(t, ok, "event channel closed early; events of %s: %v", id, got)
			if ev.ID != id {
				continue
			}
			assert.False(t, ev.Time.IsZero(), "time of event %s", ev.Type)
			if ev.Type == hypervisor.EventCrashed {
				assert.NotZero(t, ev.ExitCode, "exit code of a crash")
			}
			got = append(got, ev.Type)
		case err := <-errc:
			require.NoError(t, err, "event stream failed; events of %s: %v", id, got)
		case <-timeout.C:
			require.Failf(t, "missing events", "events of %s: %v, want the subsequence %v", id, got, want)
		}
	}
	n := 0
	for _, typ := range got {
		if typ == hypervisor.EventCrashed {
			n++
		}
	}
	assert.Equal(t, crashes, n, "crash events of %s: %v", id, got)

	cancel()
	closed := time.NewTimer(e.stateTimeout)
	defer closed.Stop()
	for evs != nil || errc != nil {
		select {
		case _, ok := <-evs:
			if !ok {
				evs = nil
			}
		case err, ok := <-errc:
			if !ok {
				errc = nil
				continue
			}
			assert.NoError(t, err, "error after the context was cancelled")
		case <-closed.C:
			require.Fail(t, "channels not closed after the context was cancelled")
		}
	}
}
