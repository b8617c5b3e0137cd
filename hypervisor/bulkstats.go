package hypervisor

import (
	"context"

	"github.com/dockervisor/dockervisor/stats"
)

// BulkStatsReader samples every instance at once.
type BulkStatsReader interface {
	// AllInstanceStats samples every instance of this driver in one call,
	// sorted by ID, as InstanceStats would one by one: CPU time and
	// percent, memory, block I/O and interface counters; an instance
	// without a process has zero usage. An instance that goes away during
	// the call is left out. It takes no instance's turn (like List).
	AllInstanceStats(ctx context.Context) ([]stats.Instance, error)
}
