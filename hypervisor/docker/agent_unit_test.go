package docker

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dockervisor/dockervisor/hypervisor"
)

func errorsAs[T error](err error) (T, bool) { return errors.AsType[T](err) }

func TestEventQueueOrderAndBound(t *testing.T) {
	q := newEventQueue(4)
	t0 := time.Now()
	// A driver event waits for the engine event of the stop it follows.
	q.pushDriver(hypervisor.Event{Type: hypervisor.EventSoftDeleted, ID: "a", Time: t0.Add(10 * time.Millisecond)})
	q.pushEngine(hypervisor.Event{Type: hypervisor.EventStopped, ID: "a", Time: t0})
	q.pushEngine(hypervisor.Event{Type: hypervisor.EventStarted, ID: "b", Time: t0.Add(20 * time.Millisecond)})
	out := make(chan hypervisor.Event, 10)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- q.deliver(ctx, out) }()
	var got []hypervisor.EventType
	for range 3 {
		got = append(got, (<-out).Type)
	}
	assert.Equal(t, []hypervisor.EventType{hypervisor.EventStopped, hypervisor.EventSoftDeleted, hypervisor.EventStarted}, got)
	cancel()
	require.NoError(t, <-done)

	// Beyond the bound: the queued events, then ErrUnavailable.
	q = newEventQueue(2)
	for i := range 5 {
		q.pushEngine(hypervisor.Event{Type: hypervisor.EventPaused, ID: "c", ExitCode: i})
	}
	out = make(chan hypervisor.Event, 10)
	err := q.deliver(t.Context(), out)
	require.ErrorIs(t, err, hypervisor.ErrUnavailable)
	require.ErrorIs(t, err, errSlowConsumer)
	require.Len(t, out, 2)
	assert.Equal(t, 0, (<-out).ExitCode)
	assert.Equal(t, 1, (<-out).ExitCode)

	// A driver event alone is released after the hold.
	q = newEventQueue(8)
	q.pushDriver(hypervisor.Event{Type: hypervisor.EventResized, ID: "d", Time: time.Now()})
	ctx, cancel = context.WithCancel(t.Context())
	defer cancel()
	out = make(chan hypervisor.Event, 1)
	go func() { _ = q.deliver(ctx, out) }()
	select {
	case ev := <-out:
		assert.Equal(t, hypervisor.EventResized, ev.Type)
	case <-time.After(5 * time.Second):
		t.Fatal("a held driver event was never released")
	}
}

func TestOpLog(t *testing.T) {
	var l opLog
	done := l.begin("c1", "power-off")
	op, ok := l.at("c1", time.Now(), true)
	assert.True(t, ok)
	assert.Equal(t, "power-off", op)
	done()
	op, ok = l.at("c1", time.Now(), true)
	assert.True(t, ok, "an exit just after the end may be the operation's, on a clock behind ours")
	assert.Equal(t, "power-off", op)
	time.Sleep(2 * opSkew)
	_, ok = l.at("c1", time.Now(), false)
	assert.False(t, ok, "an event after the operation ended is not its")
	_, ok = l.at("c2", time.Now(), false)
	assert.False(t, ok)

	// An operation that completed a start: an exit after that start and
	// after the end is a crash, not the operation's doing; an exit before
	// the start (the stop of a reboot) is still its.
	done = l.begin("c1", "reboot")
	stopAt := time.Now()
	startedAt := stopAt.Add(time.Millisecond)
	l.started("c1", startedAt)
	done()
	justAfter := time.Now().Add(opSkew / 2)
	op, ok = l.at("c1", stopAt, true)
	assert.True(t, ok)
	assert.Equal(t, "reboot", op)
	_, ok = l.at("c1", justAfter, true)
	assert.False(t, ok, "an exit after the completed start and the end")
	op, ok = l.at("c1", justAfter, false)
	assert.True(t, ok, "another event just after the end")
	assert.Equal(t, "reboot", op)
}

func TestIntendedRunning(t *testing.T) {
	assert.True(t, instanceRecord{}.intendedRunning(), "legacy record of a running instance")
	assert.False(t, instanceRecord{PoweredOff: true}.intendedRunning())
	assert.False(t, instanceRecord{Intent: intentRunning, SoftDeleted: true}.intendedRunning())
	assert.False(t, instanceRecord{Intent: intentCreated}.intendedRunning())
	assert.False(t, instanceRecord{Spawning: true}.intendedRunning())
	assert.True(t, instanceRecord{Intent: intentRunning}.intendedRunning())
}
