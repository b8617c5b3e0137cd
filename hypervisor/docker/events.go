package docker

import (
	"context"
	"errors"
	"io"
	"strconv"
	"time"

	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/client"

	"github.com/dockervisor/dockervisor/hypervisor"
)

// Events streams lifecycle events of this driver's instances, built on the
// engine's event stream, until ctx ends. Both channels are closed when the
// stream ends; the error channel carries at most one error, and none when
// ctx ended the stream. A process exit is EventStopped when the driver
// stopped the instance or the status is 0, EventCrashed otherwise.
func (d *Driver) Events(ctx context.Context) (<-chan hypervisor.Event, <-chan error) {
	out := make(chan hypervisor.Event, 64)
	errc := make(chan error, 1)
	api, err := d.engine(ctx)
	if err != nil {
		errc <- opErr("events", "", err)
		close(out)
		close(errc)
		return out, errc
	}
	f := make(client.Filters).Add("type", string(events.ContainerEventType)).Add("label", d.label(labelInstanceID))
	for _, a := range []events.Action{events.ActionStart, events.ActionDie, events.ActionPause, events.ActionUnPause, events.ActionDestroy} {
		f.Add("event", string(a))
	}
	res := api.Events(ctx, client.EventsListOptions{Filters: f})
	go func() {
		defer close(out)
		defer close(errc)
		for {
			select {
			case <-ctx.Done():
				return
			case err := <-res.Err:
				if ctx.Err() == nil && err != nil && !errors.Is(err, context.Canceled) {
					if errors.Is(err, io.EOF) {
						err = io.ErrUnexpectedEOF
					}
					errc <- opErr("events", "", classify(err, hypervisor.ErrNotFound))
				}
				return
			case m := <-res.Messages:
				ev, ok := d.event(m)
				if !ok {
					continue
				}
				select {
				case out <- ev:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return out, errc
}

// event maps an engine event to a lifecycle event.
func (d *Driver) event(m events.Message) (hypervisor.Event, bool) {
	id := m.Actor.Attributes[d.label(labelInstanceID)]
	if id == "" || m.Actor.Attributes["name"] != d.containerName(id) {
		return hypervisor.Event{}, false
	}
	ev := hypervisor.Event{ID: id, Time: time.Unix(0, m.TimeNano)}
	if m.TimeNano == 0 {
		ev.Time = time.Unix(m.Time, 0)
	}
	switch m.Action {
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
	case events.ActionDie:
		ev.ExitCode, _ = strconv.Atoi(m.Actor.Attributes["exitCode"])
		ev.Type = hypervisor.EventCrashed
		if ev.ExitCode == 0 || d.intended(m.Actor.ID, ev.Time) {
			ev.Type = hypervisor.EventStopped
		} else if rec, err := d.state.load(id); err == nil && rec.PoweredOff {
			ev.Type = hypervisor.EventStopped
		}
	default:
		return hypervisor.Event{}, false
	}
	return ev, true
}
