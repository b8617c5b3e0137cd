//go:build !linux

package docker

import (
	"context"
	"os"

	"github.com/dockervisor/dockervisor/stats"
)

// newLocalSampler returns nil: without /proc the host figures come from
// the engine.
func newLocalSampler(string) localSampler { return nil }

// openNetNS returns no namespace: there are no network namespaces to open
// on this system.
func openNetNS(int) (*os.File, error) { return nil, nil }

// interfaceCounters returns no interfaces: the instance's namespace cannot
// be read from this system.
func interfaceCounters(context.Context, *os.File) ([]stats.Interface, error) {
	return []stats.Interface{}, nil
}
