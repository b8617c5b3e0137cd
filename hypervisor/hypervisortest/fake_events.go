package hypervisortest

import (
	"context"
	"errors"
	"fmt"

	"sync"

	"github.com/dockervisor/dockervisor/hypervisor"
)

// subscriber is one event stream. Events are queued up to the Fake's
// event buffer; a subscriber whose queue would grow beyond it is ended
// with errSlowConsumer after the queued events (the slow-consumer rule of
// [hypervisor.EventReplayer]).
type subscriber struct {
	mu     sync.Mutex
	queue  []hypervisor.Event
	limit  int
	endErr error         // set once: the stream ends after the queue
	wake   chan struct{} // capacity 1
}

var (
	errSlowConsumer    = errors.New("event consumer fell too far behind; resubscribe with since")
	errEngineRestarted = errors.New("engine connection lost (engine restarted)")
)

func (s *subscriber) push(ev hypervisor.Event) {
	s.mu.Lock()
	switch {
	case s.endErr != nil:
	case len(s.queue) >= s.limit:
		s.endErr = errSlowConsumer
	default:
		s.queue = append(s.queue, ev)
	}
	s.mu.Unlock()
	s.poke()
}

func (s *subscriber) end(err error) {
	s.mu.Lock()
	if s.endErr == nil {
		s.endErr = err
	}
	s.mu.Unlock()
	s.poke()
}

func (s *subscriber) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// emit records ev in the event window and queues it for every
// subscriber, with the reason of the running operation. Caller holds f.mu.
func (f *Fake) emit(ev hypervisor.Event) {
	f.reason(&ev)
	f.agent.journal = append(f.agent.journal, ev)
	if n := len(f.agent.journal) - FakeEventWindow; n > 0 {
		f.agent.journal = append(f.agent.journal[:0], f.agent.journal[n:]...)
	}
	for s := range f.subs {
		s.push(ev)
	}
}

// Events streams the Fake's lifecycle events, in the order they happened,
// until ctx ends, the Fake is closed or the engine restarts
// ([Fake.RestartEngine]). Both channels are then closed; the error channel
// carries one error, wrapping [hypervisor.ErrUnavailable], unless ctx
// ended the stream. An operation that completes after Events returns is
// seen by the stream.
func (f *Fake) Events(ctx context.Context) (<-chan hypervisor.Event, <-chan error) {
	return f.EventsSince(ctx, hypervisor.EventOptions{})
}

// EventsSince is Events with replay of the events since opts.Since that
// the Fake's window (FakeEventWindow events) still holds. See
// [hypervisor.EventReplayer] for the slow-consumer rule; the queue bound
// is set with [WithEventBuffer].
func (f *Fake) EventsSince(ctx context.Context, opts hypervisor.EventOptions) (<-chan hypervisor.Event, <-chan error) {
	out := make(chan hypervisor.Event)
	errc := make(chan error, 1)
	s := &subscriber{wake: make(chan struct{}, 1), limit: f.opts.agent.eventBuffer}
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		errc <- hypervisor.WrapOp("events", "", errUnavailable())
		close(out)
		close(errc)
		return out, errc
	}
	if !opts.Since.IsZero() {
		for _, ev := range f.agent.journal {
			if !ev.Time.Before(opts.Since) {
				s.queue = append(s.queue, ev)
			}
		}
		s.limit += len(s.queue)
	}
	f.subs[s] = struct{}{}
	f.mu.Unlock()

	go func() {
		defer close(errc)
		defer close(out)
		defer func() {
			f.mu.Lock()
			delete(f.subs, s)
			f.mu.Unlock()
		}()
		for {
			s.mu.Lock()
			q, endErr := s.queue, s.endErr
			s.queue = nil
			s.mu.Unlock()
			for _, ev := range q {
				select {
				case out <- ev:
				case <-ctx.Done():
					return
				case <-f.closing:
					closedStream(ctx, errc)
					return
				}
			}
			if endErr != nil {
				s.mu.Lock()
				rest := len(s.queue)
				s.mu.Unlock()
				if rest == 0 {
					if ctx.Err() == nil {
						errc <- hypervisor.WrapOp("events", "", fmt.Errorf("%w: %w", hypervisor.ErrUnavailable, endErr))
					}
					return
				}
				continue
			}
			select {
			case <-s.wake:
			case <-ctx.Done():
				return
			case <-f.closing:
				closedStream(ctx, errc)
				return
			}
		}
	}()
	return out, errc
}

// closedStream reports that Close ended a stream, unless ctx ended it too.
func closedStream(ctx context.Context, errc chan<- error) {
	if ctx.Err() == nil {
		errc <- hypervisor.WrapOp("events", "", errUnavailable())
	}
}
