package docker

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
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
	// end is the end done() noted of the last operation begun on cid: the
	// times just after it are taken from it, not from the clock, which on
	// a slow or loaded host may have run on by more than opSkew.
	end := func(cid string) time.Time {
		l.mu.Lock()
		defer l.mu.Unlock()
		spans := l.by[cid]
		require.NotEmpty(t, spans)
		e := spans[len(spans)-1].end
		require.False(t, e.IsZero(), "the operation has ended")
		return e
	}
	done := l.begin("c1", "power-off")
	op, ok := l.at("c1", time.Now(), true)
	assert.True(t, ok)
	assert.Equal(t, "power-off", op)
	done()
	op, ok = l.at("c1", end("c1").Add(opSkew/2), true)
	assert.True(t, ok, "an exit just after the end may be the operation's, on a clock behind ours")
	assert.Equal(t, "power-off", op)
	_, ok = l.at("c1", end("c1").Add(opSkew+time.Millisecond), false)
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
	justAfter := end("c1").Add(opSkew / 2)
	op, ok = l.at("c1", stopAt, true)
	assert.True(t, ok)
	assert.Equal(t, "reboot", op)
	op, ok = l.at("c1", justAfter, false)
	assert.True(t, ok, "another event just after the end")
	assert.Equal(t, "reboot", op)
	_, ok = l.at("c1", justAfter, true)
	assert.False(t, ok, "an exit after the completed start and the end")
	// Once such an exit is seen, a start after it (someone started the
	// crashed container through the engine) is not the operation's
	// either, however soon it comes.
	_, ok = l.at("c1", justAfter.Add(time.Millisecond), false)
	assert.False(t, ok, "a start after that exit")
}

func TestIntendedRunning(t *testing.T) {
	assert.True(t, instanceRecord{}.intendedRunning(), "legacy record of a running instance")
	assert.False(t, instanceRecord{PoweredOff: true}.intendedRunning())
	assert.False(t, instanceRecord{Intent: intentRunning, SoftDeleted: true}.intendedRunning())
	assert.False(t, instanceRecord{Intent: intentCreated}.intendedRunning())
	assert.False(t, instanceRecord{Spawning: true}.intendedRunning())
	assert.True(t, instanceRecord{Intent: intentRunning}.intendedRunning())
}

// TestOpLogShared: the operations of one Driver name the events another
// Driver on the same state directory sees (another process, in real
// use), while they run and after they end; an operation whose process
// died names only the events soon after its start; the file is
// compacted to the last hour.
func TestOpLogShared(t *testing.T) {
	dir := t.TempDir()
	var a, b opLog
	require.NoError(t, a.open(dir, newOwner()))
	defer a.close()
	require.NoError(t, b.open(dir, newOwner()))
	defer b.close()

	done := a.begin("c1", "power-on")
	op, ok := b.at("c1", time.Now(), false)
	assert.True(t, ok, "a running operation of another Driver")
	assert.Equal(t, "power-on", op)
	started := time.Now()
	a.started("c1", started)
	done()
	time.Sleep(2 * opSkew)
	_, ok = b.at("c1", time.Now(), false)
	assert.False(t, ok, "the operation ended")
	op, ok = b.at("c1", started, false)
	assert.True(t, ok)
	assert.Equal(t, "power-on", op)
	_, ok = b.at("c1", started.Add(opSkew/2), true)
	assert.False(t, ok, "an exit after the start the operation completed (known from the file) is not its")

	// A third Driver opened later reads what is in the file.
	var c opLog
	require.NoError(t, c.open(dir, newOwner()))
	defer c.close()
	op, ok = c.at("c1", started, false)
	assert.True(t, ok)
	assert.Equal(t, "power-on", op)

	// An operation whose process is gone, never ended.
	dead := opOwner{PID: 1 << 30, Start: 1, Driver: "dead"}
	begun := time.Now().Add(-2 * opOrphan)
	writeOpLine(t, dir, opLine{C: "c2", Op: "reboot", S: begun.UnixNano(), O: dead})
	op, ok = b.at("c2", begun.Add(time.Second), false)
	assert.True(t, ok, "soon after its start")
	assert.Equal(t, "reboot", op)
	_, ok = b.at("c2", time.Now(), false)
	assert.False(t, ok, "long after its start, its process dead")
	// Alive, it would still run.
	writeOpLine(t, dir, opLine{C: "c3", Op: "snapshot", S: begun.UnixNano(), O: c.self})
	op, ok = b.at("c3", time.Now(), false)
	assert.True(t, ok, "a long operation of a live Driver")
	assert.Equal(t, "snapshot", op)

	// A cut last line is read once it is whole.
	f, err := os.OpenFile(filepath.Join(dir, "ops.jsonl"), os.O_WRONLY|os.O_APPEND, 0)
	require.NoError(t, err)
	line, err := json.Marshal(opLine{C: "c4", Op: "power-off", S: time.Now().UnixNano(), O: c.self})
	require.NoError(t, err)
	_, err = f.Write(line[:10])
	require.NoError(t, err)
	_, ok = b.at("c4", time.Now(), false)
	assert.False(t, ok)
	_, err = f.Write(append(line[10:], '\n'))
	require.NoError(t, err)
	require.NoError(t, f.Close())
	_, ok = b.at("c4", time.Now(), false)
	assert.True(t, ok)

	// Compaction: old operations go, recent ones stay, and the other
	// Drivers follow the rewritten file.
	old := time.Now().Add(-2 * opLogKeep)
	writeOpLine(t, dir, opLine{C: "c5", Op: "spawn", S: old.UnixNano(), E: old.Add(time.Second).UnixNano(), O: c.self})
	a.mu.Lock()
	a.catchUp()
	a.compact()
	a.mu.Unlock()
	raw, err := os.ReadFile(filepath.Join(dir, "ops.jsonl"))
	require.NoError(t, err)
	assert.NotContains(t, string(raw), `"c5"`)
	assert.Contains(t, string(raw), `"c1"`)
	assert.Contains(t, string(raw), `"c4"`)
	done = a.begin("c6", "pause")
	defer done()
	op, ok = b.at("c6", time.Now(), false)
	assert.True(t, ok, "after another Driver's compaction")
	assert.Equal(t, "pause", op)
}

func writeOpLine(t *testing.T, dir string, line opLine) {
	t.Helper()
	b, err := json.Marshal(line)
	require.NoError(t, err)
	f, err := os.OpenFile(filepath.Join(dir, "ops.jsonl"), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	require.NoError(t, err)
	_, err = f.Write(append(b, '\n'))
	require.NoError(t, errors.Join(err, f.Close()))
}
