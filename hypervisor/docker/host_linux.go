package docker

import (
	"context"
	"fmt"
	"os"

	"github.com/dockervisor/dockervisor/stats"
	"github.com/dockervisor/dockervisor/stats/netcounters"
	"github.com/dockervisor/dockervisor/stats/procfs"
)

// newLocalSampler returns a sampler of this host's /proc, with the disk
// figures of the file system holding diskPath.
func newLocalSampler(diskPath string) localSampler { return procfs.NewHostSampler(diskPath) }

// openNetNS opens the network namespace of process pid. Holding it keeps
// the namespace, so a reused pid cannot give another process's counters.
func openNetNS(pid int) (*os.File, error) {
	return os.Open(fmt.Sprintf("/proc/%d/ns/net", pid))
}

// interfaceCounters reads the counters of every interface in ns.
func interfaceCounters(ctx context.Context, ns *os.File) ([]stats.Interface, error) {
	return netcounters.InterfaceCountersAt(ctx, ns)
}
