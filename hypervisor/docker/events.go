package docker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/client"

	"github.com/dockervisor/dockervisor/hypervisor"
)

// eventRoom is the Driver's room of events: the engine's event stream and
// the driver's own journal.
type eventRoom struct {
	*core
	records stopIntender
	hosts   engineLocality
}

// DefaultEventBuffer is how many events a stream queues for a consumer
// that does not read before it ends the stream (see WithEventBuffer).
const DefaultEventBuffer = 4096

// driverEventHold is how long one of the driver's own events (reboot,
// resize…) waits for the engine's events of the same moment, so that a
// stream shows a soft delete after the stop it caused.
const driverEventHold = 250 * time.Millisecond

// errSlowConsumer ends the stream of a consumer that fell too far behind.
var errSlowConsumer = errors.New("event consumer fell too far behind; resubscribe with since")

// opEvents are the driver's own events of the transitions that have one.
var opEvents = map[hypervisor.Operation]hypervisor.EventType{
	hypervisor.OpRebootSoft: hypervisor.EventRebooted,
	hypervisor.OpRebootHard: hypervisor.EventRebooted,
	hypervisor.OpSoftDelete: hypervisor.EventSoftDeleted,
	hypervisor.OpRestore:    hypervisor.EventRestored,
}

// Events streams lifecycle events of this driver's instances until ctx
// ends: EventsSince without replay.
func (d *eventRoom) Events(ctx context.Context) (<-chan hypervisor.Event, <-chan error) {
	return d.EventsSince(ctx, hypervisor.EventOptions{})
}

// EventsSince streams lifecycle events of this driver's instances, built
// on the engine's event stream and the driver's own events (soft delete,
// restore, reboot, resize), until ctx ends. Both channels are closed when
// the stream ends; the error channel carries at most one error, and none
// when ctx ended the stream.
//
// Every event has a reason: an operation of this driver (named), the
// guest's own exit (with its status), the OOM killer, the engine stopping
// (see below), or something outside the driver acting through the
// engine (a start, a kill — docker kill, stop or rm -f —, a removal). A
// process exit is EventStopped when the driver stopped the instance or
// the status is 0, EventCrashed otherwise. The operations are those of
// every Driver on the same state directory, in any process: each keeps
// its operations of the last hour in the directory (ops.jsonl), so a
// stream in one process names the operation another process ran (a CLI
// that runs one operation per process, an agent after a restart).
//
// With opts.Since, the stream first replays, in time order, the events
// since then that the engine's event window (in the engine's memory, lost
// when it restarts; Docker keeps its last 256 events of all containers,
// so a busy engine holds seconds of history) and the driver's journal
// (its last 1024 own events, in the state directory) hold, then goes
// live. An instance whose intended state was running and whose exit
// since then the engine's window no longer holds was stopped by an
// engine restart: the replay reports that exit with ReasonEngineStopped,
// at its time.
//
// When the engine connection drops (an engine restart, say), the stream
// ends with an error of the hypervisor.ErrUnavailable class; resubscribe
// with Since set to the last event's time.
//
// Repeated pauses: Docker reports a pause or an unpause again when it
// learns of it late. If a request overtakes the engine's own notice of
// the one before (its event monitor runs behind, as on a busy host), the
// engine flips the container's paused flag back for a while, logging the
// flips: pause and unpause again after an unpause, or unpause and pause
// again after the pause that follows. The stream passes them on, as the
// engine reports them; the repeat of a snapshot's pause has no Cause. A
// consumer that follows the instance's state from the stream ends in
// the right state; hypervisortest.WithoutPauseEchoes drops the first
// kind from a list of one instance's events. The driver's operations
// and Info are not misled: on a local engine they wait until the
// engine's flag agrees with the kernel's freezer (pauseecho.go).
//
// Slow consumers: the stream reads the engine promptly and queues events
// for its consumer, up to the bound set with WithEventBuffer (default
// DefaultEventBuffer). A consumer that lets more pile up gets the queued
// events, then an ErrUnavailable error; no event is dropped silently.
func (d *eventRoom) EventsSince(ctx context.Context, opts hypervisor.EventOptions) (<-chan hypervisor.Event, <-chan error) {
	out := make(chan hypervisor.Event)
	errc := make(chan error, 1)
	api, err := d.engine(ctx)
	if err != nil {
		errc <- opErr("events", "", err)
		close(out)
		close(errc)
		return out, errc
	}
	q := newEventQueue(d.opts.eventBuffer)
	var histEnd time.Time
	var histMu sync.Mutex
	unsubscribe := d.journal.subscribe(func(ev hypervisor.Event) {
		histMu.Lock()
		end := histEnd
		histMu.Unlock()
		if end.IsZero() || ev.Time.After(end) {
			q.pushDriver(ev)
		}
	})
	sctx, cancel := context.WithCancel(ctx)
	go func() {
		defer unsubscribe()
		seen := map[string]bool{}
		if !opts.Since.IsZero() {
			histMu.Lock()
			histEnd = time.Now()
			histMu.Unlock()
			replay, keys, err := d.replay(sctx, api, opts.Since, histEnd)
			if err != nil {
				q.end(err)
				return
			}
			seen = keys
			q.pushReplay(replay)
		}
		f := d.eventFilters()
		lo := client.EventsListOptions{Filters: f}
		if !histEnd.IsZero() {
			lo.Since = engineTime(histEnd)
		}
		res := api.Events(sctx, lo)
		for {
			select {
			case <-sctx.Done():
				return
			case err := <-res.Err:
				if sctx.Err() == nil {
					q.end(streamErr(err))
				}
				return
			case m := <-res.Messages:
				if seen[eventKey(m)] {
					continue
				}
				if ev, ok := d.event(m); ok {
					q.pushEngine(ev)
				}
			}
		}
	}()
	go func() {
		defer cancel()
		defer close(out)
		defer close(errc)
		if err := q.deliver(ctx, out); err != nil && ctx.Err() == nil {
			errc <- opErr("events", "", err)
		}
	}()
	return out, errc
}

// streamErr classifies the end of the engine's event stream: a dropped
// connection (EOF, reset) is ErrUnavailable.
func streamErr(err error) error {
	if err == nil {
		err = errors.New("engine closed the event stream")
	}
	err = classify(err, hypervisor.ErrNotFound)
	if !hasClass(err) {
		err = fmt.Errorf("%w: engine event stream lost: %w", hypervisor.ErrUnavailable, err)
	}
	return err
}

func (d *eventRoom) eventFilters() client.Filters {
	f := make(client.Filters).Add("type", string(events.ContainerEventType)).Add("label", d.label(labelInstanceID))
	for _, a := range []events.Action{events.ActionStart, events.ActionDie, events.ActionPause, events.ActionUnPause, events.ActionDestroy, events.ActionOOM, events.ActionKill} {
		f.Add("event", string(a))
	}
	return f
}

// engineTime formats t as the engine's since/until parameter.
func engineTime(t time.Time) string {
	return fmt.Sprintf("%d.%09d", t.Unix(), t.Nanosecond())
}

func eventKey(m events.Message) string {
	return m.Actor.ID + "/" + string(m.Action) + "/" + strconv.FormatInt(m.TimeNano, 10)
}

// replay returns the events from since to until, in time order: the
// engine's, the journal's and the exits the engine's window lost. keys
// are the engine events it holds, so that the live stream skips them.
func (d *eventRoom) replay(ctx context.Context, api APIClient, since, until time.Time) ([]hypervisor.Event, map[string]bool, error) {
	res := api.Events(ctx, client.EventsListOptions{Filters: d.eventFilters(), Since: engineTime(since), Until: engineTime(until)})
	keys := map[string]bool{}
	died := map[string]bool{} // containers whose exit the window holds
	var out []hypervisor.Event
	for done := false; !done; {
		select {
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		case err := <-res.Err:
			if err != nil && !errors.Is(err, context.Canceled) && !isEOF(err) {
				return nil, nil, streamErr(err)
			}
			done = true
		case m := <-res.Messages:
			keys[eventKey(m)] = true
			if m.Action == events.ActionDie {
				died[m.Actor.ID] = true
			}
			if ev, ok := d.event(m); ok {
				out = append(out, ev)
			}
		}
	}
	out = append(out, d.journal.since(since, until)...)
	lost, err := d.lostExits(ctx, api, since, until, died)
	if err != nil {
		return nil, nil, err
	}
	out = append(out, lost...)
	slices.SortStableFunc(out, func(a, b hypervisor.Event) int { return a.Time.Compare(b.Time) })
	return out, keys, nil
}

// lostExits returns the exits between since and until of instances
// intended to run that the engine's window does not hold: the engine
// stopped them.
func (d *eventRoom) lostExits(ctx context.Context, api APIClient, since, until time.Time, died map[string]bool) ([]hypervisor.Event, error) {
	list, err := api.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: make(client.Filters).Add("label", d.label(labelInstanceID))})
	if err != nil {
		return nil, classify(err, hypervisor.ErrNotFound)
	}
	var out []hypervisor.Event
	for _, c := range list.Items {
		if died[c.ID] || (c.State != container.StateExited && c.State != container.StateDead && c.State != container.StateRunning) {
			continue
		}
		spec, ok := d.specFromLabels(c.Labels)
		if !ok || !slices.Contains(c.Names, "/"+d.containerName(spec.ID)) {
			continue
		}
		rec, err := d.state.load(spec.ID)
		if err != nil || !rec.intendedRunning() {
			continue
		}
		ci, err := api.ContainerInspect(ctx, c.ID, client.ContainerInspectOptions{})
		if err != nil || ci.Container.State == nil {
			continue
		}
		fin := parseTime(ci.Container.State.FinishedAt)
		if fin.IsZero() || fin.Before(since) || !fin.Before(until) {
			continue
		}
		ev := hypervisor.Event{Type: hypervisor.EventCrashed, ID: spec.ID, Time: fin, ExitCode: ci.Container.State.ExitCode, Reason: hypervisor.ReasonEngineStopped}
		if ev.ExitCode == 0 {
			ev.Type = hypervisor.EventStopped
		}
		out = append(out, ev)
	}
	return out, nil
}

func isEOF(err error) bool { return errors.Is(err, io.EOF) }

// event maps an engine event to a lifecycle event, with its reason.
func (d *eventRoom) event(m events.Message) (hypervisor.Event, bool) {
	id := m.Actor.Attributes[d.label(labelInstanceID)]
	if id == "" || m.Actor.Attributes["name"] != d.containerName(id) {
		return hypervisor.Event{}, false
	}
	ev := hypervisor.Event{ID: id, Time: time.Unix(0, m.TimeNano)}
	if m.TimeNano == 0 {
		ev.Time = time.Unix(m.Time, 0)
	}
	// A kill, like an exit, after the start an operation completed is
	// not that operation's.
	op, byDriver := d.ops.at(m.Actor.ID, ev.Time, m.Action == events.ActionDie || m.Action == events.ActionKill)
	ev.Reason, ev.Operation = hypervisor.ReasonExternal, ""
	if byDriver {
		ev.Reason, ev.Operation = hypervisor.ReasonRequested, op
	}
	switch m.Action {
	case events.ActionOOM:
		d.ooms.mark(m.Actor.ID, ev.Time)
		return hypervisor.Event{}, false
	case events.ActionKill:
		if !byDriver {
			d.ooms.markKill(m.Actor.ID, ev.Time)
		}
		return hypervisor.Event{}, false
	case events.ActionStart:
		ev.Type = hypervisor.EventStarted
	case events.ActionPause:
		ev.Type = hypervisor.EventPaused
		ev.Cause = d.marks.cause(m.Actor.ID, ev.Time, true)
	case events.ActionUnPause:
		ev.Type = hypervisor.EventUnpaused
		ev.Cause = d.marks.cause(m.Actor.ID, ev.Time, false)
	case events.ActionDestroy:
		ev.Type = hypervisor.EventDestroyed
		d.ooms.forget(m.Actor.ID)
	case events.ActionDie:
		ev.ExitCode, _ = strconv.Atoi(m.Actor.Attributes["exitCode"])
		ev.Type = hypervisor.EventCrashed
		intended := d.records.intended(m.Actor.ID, ev.Time)
		switch {
		case byDriver || intended:
			ev.Type = hypervisor.EventStopped
			ev.Reason = hypervisor.ReasonRequested
		case d.ooms.killed(m.Actor.ID, ev.Time) || d.kernelOOMKilled(m.Actor.ID, ev.ExitCode, ev.Time):
			ev.Reason = hypervisor.ReasonOOMKilled
		case d.ooms.killedOutside(m.Actor.ID, ev.Time):
			// Reason stays external: someone killed it through the engine.
			if ev.ExitCode == 0 {
				ev.Type = hypervisor.EventStopped
			}
		default:
			ev.Reason = hypervisor.ReasonExited
			if ev.ExitCode == 0 {
				ev.Type = hypervisor.EventStopped
			} else if rec, err := d.state.load(id); err == nil && rec.PoweredOff {
				ev.Type = hypervisor.EventStopped
			}
		}
	default:
		return hypervisor.Event{}, false
	}
	return ev, true
}

// oomMarks remembers the engine's OOM events and the kills from outside
// the driver, so that the exit that follows one is reported as an OOM
// kill or as external, and the process each start of a container began,
// for the kernel's word when the engine's is missing.
type oomMarks struct {
	mu    sync.Mutex
	at    map[string]time.Time // the engine's OOM events
	kills map[string]time.Time // kills from outside the driver
	procs map[string]startedProcess
}

// startedProcess is a container's process as its last start began it.
type startedProcess struct {
	pid int
	at  time.Time
}

// started records the process of a start of cid.
func (o *oomMarks) started(cid string, pid int, at time.Time) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.procs == nil {
		o.procs = make(map[string]startedProcess)
	}
	o.procs[cid] = startedProcess{pid: pid, at: at}
}

// process returns the process of the last start of cid that this Driver
// made.
func (o *oomMarks) process(cid string) (startedProcess, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	p, ok := o.procs[cid]
	return p, ok
}

// forget drops what is known of cid, which is gone.
func (o *oomMarks) forget(cid string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	delete(o.procs, cid)
	delete(o.at, cid)
	delete(o.kills, cid)
}

// oomKillSkew is how far before a start the kernel's clock of log
// timestamps may put an OOM kill of that start's process (the two
// clocks are compared through the monotonic clock).
const oomKillSkew = time.Second

// kernelOOMKilled reports whether the kernel says it killed container
// cid's process for lack of memory, when the exit at exitAt was a SIGKILL
// and the engine is local. The engine's own report is lost often on
// cgroup v2 (containerd 1.6 on Debian 12 misses most), so the kernel's
// log is asked: for the process the last start began, or, for a
// container this Driver did not start, for a process in its cgroup. The
// kill must be in the 10 s before the exit (as for the engine's report)
// and after the start.
func (d *eventRoom) kernelOOMKilled(cid string, exitCode int, exitAt time.Time) bool {
	if exitCode != killedExitCode || !d.hosts.isLocalEngine() {
		return false
	}
	since := exitAt.Add(-oomExitWindow)
	p, ok := d.ooms.process(cid)
	if ok && p.at.Add(-oomKillSkew).After(since) {
		since = p.at.Add(-oomKillSkew)
	}
	return kernelOOMKill(cid, p.pid, since, exitAt.Add(oomKillSkew))
}

// oomExitWindow is how long before an exit an OOM report is taken as its
// cause.
const oomExitWindow = 10 * time.Second

func (o *oomMarks) mark(cid string, t time.Time) { o.markIn(&o.at, cid, t) }

// markKill notes a kill of cid at t that no operation of the driver
// asked for (docker kill, docker stop, docker rm -f).
func (o *oomMarks) markKill(cid string, t time.Time) { o.markIn(&o.kills, cid, t) }

func (o *oomMarks) markIn(m *map[string]time.Time, cid string, t time.Time) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if *m == nil {
		*m = make(map[string]time.Time)
	}
	for k, v := range *m {
		if time.Since(v) > opLogKeep {
			delete(*m, k)
		}
	}
	(*m)[cid] = t
}

// killed reports whether an exit of cid at t follows an OOM event.
func (o *oomMarks) killed(cid string, t time.Time) bool { return o.follows(o.at, cid, t) }

// killedOutside reports whether an exit of cid at t follows a kill that
// no operation of the driver asked for.
func (o *oomMarks) killedOutside(cid string, t time.Time) bool { return o.follows(o.kills, cid, t) }

func (o *oomMarks) follows(m map[string]time.Time, cid string, t time.Time) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	at, ok := m[cid]
	return ok && !t.Before(at.Add(-opSkew)) && t.Sub(at) < oomExitWindow
}

// eventQueue is one stream's queue between the sources (the engine
// stream, the journal) and the consumer, bounded by limit.
type eventQueue struct {
	mu     sync.Mutex
	ready  []hypervisor.Event
	held   []heldEvent // driver events waiting for the engine's
	limit  int
	endErr error
	wake   chan struct{}
}

type heldEvent struct {
	ev      hypervisor.Event
	arrived time.Time
}

func newEventQueue(limit int) *eventQueue {
	return &eventQueue{limit: limit, wake: make(chan struct{}, 1)}
}

func (q *eventQueue) poke() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// add appends to ready; caller holds q.mu.
func (q *eventQueue) add(ev hypervisor.Event) {
	if q.endErr != nil {
		return
	}
	if len(q.ready)+len(q.held) >= q.limit {
		q.endErr = fmt.Errorf("%w: %w", hypervisor.ErrUnavailable, errSlowConsumer)
		return
	}
	q.ready = append(q.ready, ev)
}

// release moves held events up to t (all with a zero t) to ready; caller
// holds q.mu.
func (q *eventQueue) release(t time.Time, now time.Time) {
	keep := q.held[:0]
	for _, h := range q.held {
		if t.IsZero() || !h.ev.Time.After(t) || now.Sub(h.arrived) >= driverEventHold {
			q.ready = append(q.ready, h.ev)
		} else {
			keep = append(keep, h)
		}
	}
	q.held = keep
}

func (q *eventQueue) pushEngine(ev hypervisor.Event) {
	q.mu.Lock()
	q.release(ev.Time, time.Now())
	q.add(ev)
	q.mu.Unlock()
	q.poke()
}

func (q *eventQueue) pushDriver(ev hypervisor.Event) {
	q.mu.Lock()
	if q.endErr == nil {
		if len(q.ready)+len(q.held) >= q.limit {
			q.endErr = fmt.Errorf("%w: %w", hypervisor.ErrUnavailable, errSlowConsumer)
		} else {
			q.held = append(q.held, heldEvent{ev: ev, arrived: time.Now()})
		}
	}
	q.mu.Unlock()
	q.poke()
}

// pushReplay queues the replayed events; they do not count against the
// bound.
func (q *eventQueue) pushReplay(evs []hypervisor.Event) {
	q.mu.Lock()
	q.ready = append(q.ready, evs...)
	q.limit += len(evs)
	q.mu.Unlock()
	q.poke()
}

func (q *eventQueue) end(err error) {
	q.mu.Lock()
	if q.endErr == nil {
		q.endErr = err
	}
	q.mu.Unlock()
	q.poke()
}

// deliver sends queued events to out until ctx ends or the queue ends;
// it returns the queue's error after the last queued event.
func (q *eventQueue) deliver(ctx context.Context, out chan<- hypervisor.Event) error {
	tick := time.NewTicker(driverEventHold / 4)
	defer tick.Stop()
	for {
		q.mu.Lock()
		q.release(time.Unix(0, 1), time.Now()) // only the held ones whose time is up
		batch := q.ready
		q.ready = nil
		endErr := q.endErr
		if endErr != nil && len(batch) == 0 {
			q.release(time.Time{}, time.Now())
			batch, q.ready = q.ready, nil
		}
		q.mu.Unlock()
		for _, ev := range batch {
			select {
			case out <- ev:
			case <-ctx.Done():
				return nil
			}
		}
		if endErr != nil && len(batch) == 0 {
			return endErr
		}
		if len(batch) > 0 {
			continue
		}
		select {
		case <-q.wake:
		case <-tick.C:
		case <-ctx.Done():
			return nil
		}
	}
}
