package hypervisortest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dockervisor/dockervisor/hypervisor"
)

// collect reads events of id from evs until pred is satisfied by what it
// read, or the state timeout passes.
func (e *agentEnv) collect(t *testing.T, evs <-chan hypervisor.Event, errc <-chan error, id string, done func([]hypervisor.Event) bool) []hypervisor.Event {
	t.Helper()
	var got []hypervisor.Event
	timeout := time.NewTimer(e.stateTimeout)
	defer timeout.Stop()
	for !done(got) {
		select {
		case ev, ok := <-evs:
			if !ok {
				err := <-errc
				t.Fatalf("stream ended early (%v); events of %s: %v", err, id, got)
			}
			if ev.ID == id {
				got = append(got, ev)
			}
		case <-timeout.C:
			t.Fatalf("timed out; events of %s: %+v", id, got)
		}
	}
	return got
}

// prompt reads evs promptly into a large buffer, as a consumer that keeps
// up does, until evs closes; the returned channels replace evs and errc.
func prompt(evs <-chan hypervisor.Event, errc <-chan error) (<-chan hypervisor.Event, <-chan error) {
	out := make(chan hypervisor.Event, 1<<14)
	outErr := make(chan error, 1)
	go func() {
		defer close(outErr)
		defer close(out)
		for ev := range evs {
			out <- ev
		}
		if err, ok := <-errc; ok {
			outErr <- err
		}
	}()
	return out, outErr
}

func types(evs []hypervisor.Event) []hypervisor.EventType {
	out := make([]hypervisor.EventType, len(evs))
	for i, ev := range evs {
		out[i] = ev.Type
	}
	return out
}

// find returns the first event of type typ at or after index from.
func find(evs []hypervisor.Event, typ hypervisor.EventType, from int) (hypervisor.Event, int) {
	for i := from; i < len(evs); i++ {
		if evs[i].Type == typ {
			return evs[i], i
		}
	}
	return hypervisor.Event{}, -1
}

func testEventReasons(t *testing.T, e *agentEnv) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	evs, errc := prompt(e.a.EventsSince(ctx, hypervisor.EventOptions{}))
	spec := e.spec("reasons")
	e.spawn(t, spec)
	id := spec.ID
	require.NoError(t, e.d.PowerOff(ctx, id, hypervisor.StopOptions{Timeout: stopTimeout}))
	require.NoError(t, e.d.PowerOn(ctx, id))
	require.NoError(t, e.d.Reboot(ctx, id, hypervisor.RebootOptions{Hard: true}))
	require.NoError(t, e.a.Resize(ctx, id, hypervisor.Flavor{VCPUs: 2, MemoryMB: 72}))
	require.NoError(t, e.d.SoftDelete(ctx, id))
	require.NoError(t, e.d.Restore(ctx, id))
	want := []hypervisor.EventType{
		hypervisor.EventStarted,                          // spawn
		hypervisor.EventStopped,                          // power-off
		hypervisor.EventStarted,                          // power-on
		hypervisor.EventStopped, hypervisor.EventStarted, // reboot
		hypervisor.EventRebooted,
		hypervisor.EventResized,
		hypervisor.EventStopped, hypervisor.EventSoftDeleted,
		hypervisor.EventStarted, hypervisor.EventRestored,
	}
	if e.h.Crash != nil {
		e.h.Crash(t, id)
		want = append(want, hypervisor.EventCrashed)
	}
	got := e.collect(t, evs, errc, id, func(got []hypervisor.Event) bool { return containsSubsequence(types(got), want) })
	ops := []string{"spawn", "power-off", "power-on", "reboot", "reboot", "reboot", "resize", "soft-delete", "soft-delete", "restore", "restore"}
	i := 0
	for k, typ := range want {
		ev, j := find(got, typ, i)
		require.GreaterOrEqual(t, j, 0, "event %s (#%d) in %v", typ, k, types(got))
		i = j + 1
		if typ == hypervisor.EventCrashed {
			assert.Equal(t, hypervisor.ReasonExited, ev.Reason, "reason of a crash")
			assert.NotZero(t, ev.ExitCode)
			continue
		}
		assert.Equal(t, hypervisor.ReasonRequested, ev.Reason, "reason of %s #%d", typ, k)
		assert.Equal(t, ops[k], ev.Operation, "operation of %s #%d", typ, k)
		if typ == hypervisor.EventResized {
			require.NotNil(t, ev.Flavor, "flavor of a resize event")
			assert.Equal(t, hypervisor.Flavor{VCPUs: 2, MemoryMB: 72}, *ev.Flavor)
		}
	}

	if e.ah.OOMKill != nil {
		o := e.spec("reasons-oom")
		e.spawn(t, o)
		e.ah.OOMKill(t, o.ID)
		got := e.collect(t, evs, errc, o.ID, func(got []hypervisor.Event) bool {
			_, j := find(got, hypervisor.EventCrashed, 0)
			return j >= 0
		})
		ev, _ := find(got, hypervisor.EventCrashed, 0)
		assert.Equal(t, hypervisor.ReasonOOMKilled, ev.Reason, "reason of an OOM kill")
	}
}

func testEventReplay(t *testing.T, e *agentEnv) {
	ctx := t.Context()
	since := time.Now().Add(-time.Second)
	spec := e.spec("replay")
	e.spawn(t, spec)
	require.NoError(t, e.d.Pause(ctx, spec.ID))
	require.NoError(t, e.d.Unpause(ctx, spec.ID))
	require.NoError(t, e.d.PowerOff(ctx, spec.ID, hypervisor.StopOptions{Timeout: stopTimeout}))
	want := []hypervisor.EventType{hypervisor.EventStarted, hypervisor.EventPaused, hypervisor.EventUnpaused, hypervisor.EventStopped}

	// A subscriber that was not there gets the past events, then live ones.
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	evs, errc := prompt(e.a.EventsSince(sctx, hypervisor.EventOptions{Since: since}))
	got := e.collect(t, evs, errc, spec.ID, func(got []hypervisor.Event) bool { return containsSubsequence(types(got), want) })
	assert.Equal(t, want, types(WithoutPauseEchoes(got)), "replayed events, in order")
	for i := 1; i < len(got); i++ {
		assert.False(t, got[i].Time.Before(got[i-1].Time), "replayed events in time order")
	}
	require.NoError(t, e.d.PowerOn(ctx, spec.ID))
	e.collect(t, evs, errc, spec.ID, func(more []hypervisor.Event) bool {
		return containsSubsequence(types(more), []hypervisor.EventType{hypervisor.EventStarted})
	})

	// Since after the events: none of them.
	time.Sleep(5 * time.Millisecond)
	cut := time.Now()
	time.Sleep(5 * time.Millisecond)
	c2, cancel2 := context.WithCancel(ctx)
	evs2, errc2 := prompt(e.a.EventsSince(c2, hypervisor.EventOptions{Since: cut}))
	require.NoError(t, e.d.Pause(ctx, spec.ID))
	later := e.collect(t, evs2, errc2, spec.ID, func(g []hypervisor.Event) bool { _, j := find(g, hypervisor.EventPaused, 0); return j >= 0 })
	for _, ev := range later {
		assert.False(t, ev.Time.Before(cut), "event %s at %v is before since %v", ev.Type, ev.Time, cut)
	}
	cancel2()
}

// liveRetry is how long awaitLive waits for the Unpaused of a round
// before it makes another: a round made before the subscription went live
// is never delivered. A round that was only slow to arrive costs nothing
// but its events ahead of the next ones.
const liveRetry = 500 * time.Millisecond

// awaitLive waits until evs, a stream without Since, is live for instance
// id (running): such a stream gets only the events after the backend
// registered it, which may be some time after EventsSince returned. It
// pauses and unpauses id until an Unpaused of id arrives, and reads
// nothing after that one: evs then delivers every later event of id, in
// order, the next one a Paused.
func (e *agentEnv) awaitLive(t *testing.T, ctx context.Context, evs <-chan hypervisor.Event, errc <-chan error, id string) {
	t.Helper()
	timeout := time.NewTimer(e.stateTimeout)
	defer timeout.Stop()
	for round := 1; ; round++ {
		require.NoError(t, e.d.Pause(ctx, id))
		require.NoError(t, e.d.Unpause(ctx, id))
		retry := time.NewTimer(liveRetry)
		for waiting := true; waiting; {
			select {
			case ev, ok := <-evs:
				if !ok {
					retry.Stop()
					t.Fatalf("stream ended before it went live: %v", <-errc)
				}
				if ev.ID == id && ev.Type == hypervisor.EventUnpaused {
					retry.Stop()
					return
				}
			case <-retry.C:
				waiting = false
			case <-timeout.C:
				retry.Stop()
				t.Fatalf("stream not live after %d pause-unpause rounds in %v", round, e.stateTimeout)
			}
		}
	}
}

// testSlowConsumer checks the slow-consumer rule: a subscriber that does
// not read gets every event queued up to the bound, in order, then an
// ErrUnavailable error; nothing is skipped silently, and a resubscription
// with since gets the rest.
func testSlowConsumer(t *testing.T, e *agentEnv) {
	if e.ah.EventBuffer <= 0 {
		t.Skip("AgentHarness.EventBuffer is zero")
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	spec := e.spec("slow")
	e.spawn(t, spec)
	evs, errc := e.a.EventsSince(ctx, hypervisor.EventOptions{})
	e.awaitLive(t, ctx, evs, errc, spec.ID)
	rounds := e.ah.EventBuffer + 4
	for range rounds {
		require.NoError(t, e.d.Pause(ctx, spec.ID))
		require.NoError(t, e.d.Unpause(ctx, spec.ID))
	}
	var got []hypervisor.Event
	var streamErr error
	timeout := time.After(e.stateTimeout)
read:
	for {
		select {
		case ev, ok := <-evs:
			if !ok {
				streamErr = <-errc
				break read
			}
			if ev.ID == spec.ID {
				got = append(got, ev)
			}
		case <-timeout:
			t.Fatalf("a consumer %d events behind was neither ended nor served (%d read)", 2*rounds, len(got))
		}
	}
	require.Error(t, streamErr, "the stream of a slow consumer ends with an error")
	requireClass(t, streamErr, hypervisor.ErrUnavailable, "")
	assert.Less(t, len(got), 2*rounds, "a consumer that fell behind was ended before it got everything")
	// What it got is a gap-free prefix: pause, unpause, pause...
	for i, ev := range got {
		want := hypervisor.EventPaused
		if i%2 == 1 {
			want = hypervisor.EventUnpaused
		}
		require.Equal(t, want, ev.Type, "event %d of a slow consumer", i)
	}
	// Resubscribing with since gets the rest.
	since := time.Time{}
	if len(got) > 0 {
		since = got[len(got)-1].Time
	} else {
		since = time.Now().Add(-time.Minute)
	}
	c2, cancel2 := context.WithCancel(t.Context())
	defer cancel2()
	evs2, errc2 := prompt(e.a.EventsSince(c2, hypervisor.EventOptions{Since: since}))
	rest := e.collect(t, evs2, errc2, spec.ID, func(g []hypervisor.Event) bool {
		n := 0
		for _, ev := range g {
			if ev.Type == hypervisor.EventUnpaused {
				n++
			}
		}
		return len(got)/2+n >= rounds
	})
	assert.NotEmpty(t, rest)
	if errors.Is(streamErr, context.Canceled) {
		t.Fatal("stream ended by cancel")
	}
}
