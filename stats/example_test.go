package stats_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/dockervisor/dockervisor/stats"
)

func ExampleCPUPercent() {
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	prev := stats.CPUPoint{CPUTime: 10 * time.Second, Wall: t0}
	cur := stats.CPUPoint{CPUTime: 13 * time.Second, Wall: t0.Add(2 * time.Second)}
	fmt.Printf("%.0f%% of one CPU\n", stats.CPUPercent(prev, cur))
	// Output:
	// 150% of one CPU
}

func ExampleWatch() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errFlaky := errors.New("flaky")

	// A fake sampler. The ack channel only makes this example's output
	// deterministic: each sample waits until the previous result was
	// consumed, so none is dropped. Real samplers do not wait.
	ack := make(chan struct{}, 1)
	n := 0
	sample := func(ctx context.Context) (int, error) {
		if n > 0 {
			select {
			case <-ack:
			case <-ctx.Done():
				return 0, ctx.Err()
			}
		}
		n++ // sample runs on one goroutine only
		if n == 2 {
			return 0, errFlaky
		}
		return n, nil
	}

	for r := range stats.Watch(ctx, time.Millisecond, sample) {
		switch {
		case r.Err != nil:
			fmt.Println("error:", r.Err) // errors are values; the watch goes on
		case r.Value >= 3:
			fmt.Println("sample", r.Value)
			cancel() // ends the watch: the channel is closed
			continue
		default:
			fmt.Println("sample", r.Value)
		}
		ack <- struct{}{}
	}
	fmt.Println("closed")
	// Output:
	// sample 1
	// error: flaky
	// sample 3
	// closed
}
