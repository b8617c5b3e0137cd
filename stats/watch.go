package stats

import (
	"context"
	"time"
)

// Result is one delivery of Watch: a sample or the error of taking it.
type Result[T any] struct {
	Time  time.Time // when the sample was taken (after sample returned)
	Value T         // the sample; meaningful only when Err is nil
	Err   error     // the sampler's error, delivered as a value
}

// Watch calls sample once at once and then at every interval until ctx
// ends, and delivers each result on the returned channel, which it closes
// after ctx ends and the sampler has returned. Errors are delivered as
// Results too; they do not stop the watch.
//
// Watch never queues: the channel holds at most one result, and a result
// that the consumer has not taken by the time the next one is ready is
// replaced by the newer one (the stale sample is dropped). A slow
// consumer therefore sees fewer, always fresh, samples, and it never
// blocks the sampler. Ticks that fall while sample is still running are
// dropped as well (time.Ticker semantics), so a slow sampler is not
// called back to back to catch up.
//
// sample is called with ctx and from one goroutine only. Watch panics if
// interval is not positive, like time.NewTicker.
func Watch[T any](ctx context.Context, interval time.Duration, sample func(context.Context) (T, error)) <-chan Result[T] {
	if interval <= 0 {
		panic("stats: Watch with a non-positive interval")
	}
	ch := make(chan Result[T], 1)
	go func() {
		defer close(ch)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			v, err := sample(ctx)
			if ctx.Err() != nil {
				return
			}
			deliverLatest(ch, Result[T]{Time: time.Now(), Value: v, Err: err})
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return ch
}

// deliverLatest puts r into ch (capacity 1) without blocking, dropping a
// result still waiting there. Only the one producer sends on ch, so after
// the drain the send cannot block.
func deliverLatest[T any](ch chan T, r T) {
	select {
	case ch <- r:
		return
	default:
	}
	select {
	case <-ch:
	default:
	}
	ch <- r
}
