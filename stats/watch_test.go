package stats

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestWatchSlowConsumerDropsStale checks, without timing assertions, that
// an absent consumer never blocks the sampler, that at most one result
// waits in the channel, and that it is the newest one.
func TestWatchSlowConsumerDropsStale(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	const waitCalls = 20
	var n atomic.Int64
	calls := make(chan int64, waitCalls)
	sample := func(context.Context) (int64, error) {
		v := n.Add(1)
		if v <= waitCalls {
			calls <- v // never blocks: capacity waitCalls
		}
		return v, nil
	}
	ch := Watch(ctx, time.Microsecond, sample)
	require.LessOrEqual(t, cap(ch), 1, "Watch must not queue")

	// Nobody reads ch while the sampler runs waitCalls times: it must not
	// block on delivery.
	for range waitCalls {
		<-calls
	}
	// Before call waitCalls started, results 1..waitCalls-1 had been
	// offered; only the newest may still be waiting.
	first := <-ch
	require.NoError(t, first.Err)
	require.GreaterOrEqual(t, first.Value, int64(waitCalls-1))

	cancel()
	got := []int64{first.Value}
	for r := range ch { // closed after cancel
		require.NoError(t, r.Err)
		got = append(got, r.Value)
	}
	total := n.Load()
	for i := 1; i < len(got); i++ {
		require.Greater(t, got[i], got[i-1], "results are fresh and in order")
	}
	require.LessOrEqual(t, got[len(got)-1], total)
	dropped := total - int64(len(got))
	require.GreaterOrEqual(t, dropped, int64(waitCalls-2), "stale results must be dropped, got %v of %d", got, total)
}

func TestWatchDeliversErrorsAsValues(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	errBoom := errors.New("boom")
	var n atomic.Int64
	ch := Watch(ctx, time.Millisecond, func(context.Context) (int, error) {
		if n.Add(1)%2 == 1 {
			return 0, errBoom
		}
		return 7, nil
	})
	var sawErr, sawValue bool
	for r := range ch {
		if r.Err != nil {
			require.ErrorIs(t, r.Err, errBoom)
			sawErr = true
		} else {
			require.Equal(t, 7, r.Value)
			sawValue = true
		}
		require.False(t, r.Time.IsZero())
		if sawErr && sawValue {
			cancel()
		}
	}
	require.True(t, sawErr && sawValue)
}

func TestWatchClosesWhenSamplerIsBlockedAndCtxEnds(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	started := make(chan struct{})
	ch := Watch(ctx, time.Hour, func(ctx context.Context) (int, error) {
		close(started)
		<-ctx.Done()
		return 0, ctx.Err()
	})
	<-started
	cancel()
	_, ok := <-ch
	require.False(t, ok, "no result after ctx ended; channel closed")
}

func TestWatchFirstSampleIsImmediate(t *testing.T) {
	// With an hour interval, a result can only come from the immediate call.
	ch := Watch(t.Context(), time.Hour, func(context.Context) (string, error) { return "now", nil })
	r := <-ch
	require.NoError(t, r.Err)
	require.Equal(t, "now", r.Value)
}

func TestWatchPanicsOnBadInterval(t *testing.T) {
	require.Panics(t, func() {
		Watch(t.Context(), 0, func(context.Context) (int, error) { return 0, nil })
	})
}
