package hypervisortest

import (
	"context"
	"sync"

	"github.com/dockervisor/dockervisor/hypervisor"
)

// subscriber is one Events stream. Events are queued without bound, so the
// Fake never blocks on, and never drops events for, a slow reader.
type subscriber struct {
	mu    sync.Mutex
	queue []hypervisor.Event
	wake  chan struct{} // capacity 1
}

// emit queues ev for every subscriber. Caller holds f.mu.
func (f *Fake) emit(ev hypervisor.Event) {
	for s := range f.subs {
		s.mu.Lock()
		s.queue = append(s.queue, ev)
		s.mu.Unlock()
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
}

// Events streams the Fake's lifecycle events, in the order they happened,
// until ctx ends or the Fake is closed. Both channels are then closed; the
// error channel carries one error, wrapping [hypervisor.ErrUnavailable],
// only when Close ended the stream. An operation that completes after
// Events returns is seen by the stream.
func (f *Fake) Events(ctx context.Context) (<-chan hypervisor.Event, <-chan error) {
	out := make(chan hypervisor.Event)
	errc := make(chan error, 1)
	s := &subscriber{wake: make(chan struct{}, 1)}
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		errc <- hypervisor.WrapOp("events", "", errUnavailable())
		close(out)
		close(errc)
		return out, errc
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
			q := s.queue
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
