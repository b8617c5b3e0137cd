package docker

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"

	"github.com/moby/moby/client"

	"github.com/dockervisor/dockervisor/hypervisor"
)

// runtimeCheck remembers that the engine has the runtime of WithRuntime,
// so that only a Driver's first create asks.
type runtimeCheck struct {
	mu sync.Mutex
	ok bool
}

// checkRuntime returns nil when the Driver has no runtime of its own or
// the engine has it registered, and hypervisor.ErrNotSupported naming the
// engine's runtimes otherwise. A positive answer is kept: an engine's
// runtimes change only when it reloads its configuration, and then its
// own answer at create is the error.
func (d *lifecycleRoom) checkRuntime(ctx context.Context, api APIClient) error {
	name := d.opts.runtime
	if name == "" {
		return nil
	}
	d.runtimes.mu.Lock()
	defer d.runtimes.mu.Unlock()
	if d.runtimes.ok {
		return nil
	}
	info, err := api.Info(ctx, client.InfoOptions{})
	if err != nil {
		return fmt.Errorf("engine info: %w", classify(err, hypervisor.ErrUnavailable))
	}
	d.osInst.noteCgroupVersion(info.Info.CgroupVersion)
	if _, ok := info.Info.Runtimes[name]; !ok {
		have := slices.Sorted(maps.Keys(info.Info.Runtimes))
		return fmt.Errorf("%w: the engine has no OCI runtime %q (it has %s); register it with the engine "+
			"(\"runtimes\" in its daemon.json, or dockerd --add-runtime %s=PATH)",
			hypervisor.ErrNotSupported, name, strings.Join(have, ", "), name)
	}
	d.runtimes.ok = true
	return nil
}
