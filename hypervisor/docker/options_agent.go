package docker

import (
	"fmt"

	"github.com/dockervisor/dockervisor/hypervisor"
)

// WithEventBuffer sets how many events an event stream queues for a
// consumer that does not read before it ends the stream with an
// ErrUnavailable error (the slow-consumer rule of EventsSince). The
// default is DefaultEventBuffer.
func WithEventBuffer(n int) Option {
	return func(o *options) error {
		if n <= 0 {
			return fmt.Errorf("%w: event buffer %d must be positive", hypervisor.ErrInvalidArgument, n)
		}
		o.eventBuffer = n
		return nil
	}
}
