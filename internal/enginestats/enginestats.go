// Package enginestats converts the Docker engine's container statistics
// (GET /containers/{id}/stats, as moby's container.StatsResponse) into
// stats.Instance samples. It handles both cgroup v1 and cgroup v2 hosts
// the way the docker CLI does (`docker stats`).
//
// Network counters: the engine reports only the interfaces of networks it
// manages (none with NetworkMode "none"), so Convert copies those, and a
// caller that plugs its own interfaces reads them inside the container's
// network namespace with stats/netcounters instead.
package enginestats

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/dockervisor/dockervisor/errclass"
	"github.com/dockervisor/dockervisor/stats"
)

// ErrDecode means the engine's stats answer could not be decoded. It is
// an [errclass.ErrUnavailable].
var ErrDecode = errclass.New("enginestats: cannot decode engine stats", errclass.ErrUnavailable)

// Client is the part of the moby client this package uses;
// *client.Client implements it.
type Client interface {
	ContainerStats(ctx context.Context, containerID string, options client.ContainerStatsOptions) (client.ContainerStatsResult, error)
}

var _ Client = (*client.Client)(nil)

// Options tune Fetch.
type Options struct {
	// IncludePreviousSample asks the engine for a second, earlier sample
	// (precpu_stats), so that the result carries CPUPercent. The engine
	// then answers after its sampling interval (about one second).
	// Without it the request is one-shot (API 1.41 and later): it returns
	// at once and CPUPercent is 0; compute it from two samples with
	// stats.CPUPercent instead.
	IncludePreviousSample bool
}

// Fetch asks the engine for one sample of the container's statistics
// (never a stream) and converts it with Convert. The returned ID is
// containerID; callers that name instances otherwise replace it. An error
// of the engine (for example a not-found container) is wrapped unchanged,
// so cerrdefs.IsNotFound and errors.Is work on it.
func Fetch(ctx context.Context, c Client, containerID string, opts Options) (stats.Instance, error) {
	res, err := c.ContainerStats(ctx, containerID, client.ContainerStatsOptions{
		Stream:                false,
		IncludePreviousSample: opts.IncludePreviousSample,
	})
	if err != nil {
		return stats.Instance{}, fmt.Errorf("enginestats: stats of %s: %w", containerID, err)
	}
	defer res.Body.Close()
	r, err := Decode(res.Body)
	if err != nil {
		return stats.Instance{}, fmt.Errorf("enginestats: stats of %s: %w", containerID, err)
	}
	return Convert(containerID, r), nil
}

// Decode reads one stats answer of the engine.
func Decode(r io.Reader) (container.StatsResponse, error) {
	var s container.StatsResponse
	if err := json.NewDecoder(r).Decode(&s); err != nil {
		return container.StatsResponse{}, fmt.Errorf("%w: %w", ErrDecode, err)
	}
	return s, nil
}

// Convert turns an engine stats answer into an instance sample with the
// given ID:
//   - Time is the engine's read time; CPUTime is cpu_usage.total_usage;
//   - CPUPercent comes from the cpu_stats/precpu_stats deltas (see
//     CPUPercent), 0 when the answer has no previous sample;
//   - MemoryBytes is the usage without the inactive page cache
//     (MemoryUsageNoCache), MemoryLimitBytes the engine's limit (the host's
//     memory when the container has no limit);
//   - BlockReadBytes/BlockWriteBytes come from BlockIO;
//   - Interfaces are the engine's per-network counters, sorted by device.
//
// A container that is not running has a zero Read time and zero counters
// in the engine's answer, and so in the sample.
func Convert(id string, r container.StatsResponse) stats.Instance {
	in := stats.Instance{
		ID:               id,
		Time:             r.Read,
		CPUTime:          time.Duration(r.CPUStats.CPUUsage.TotalUsage),
		CPUPercent:       CPUPercent(r),
		MemoryBytes:      MemoryUsageNoCache(r.MemoryStats),
		MemoryLimitBytes: r.MemoryStats.Limit,
	}
	in.BlockReadBytes, in.BlockWriteBytes = BlockIO(r.BlkioStats)
	for name, n := range r.Networks {
		in.Interfaces = append(in.Interfaces, stats.Interface{
			Device:  name,
			RxBytes: n.RxBytes, TxBytes: n.TxBytes,
			RxPackets: n.RxPackets, TxPackets: n.TxPackets,
			RxErrors: n.RxErrors, TxErrors: n.TxErrors,
			RxDropped: n.RxDropped, TxDropped: n.TxDropped,
		})
	}
	slices.SortFunc(in.Interfaces, func(a, b stats.Interface) int {
		switch {
		case a.Device < b.Device:
			return -1
		case a.Device > b.Device:
			return 1
		}
		return 0
	})
	return in
}

// CPUPercent returns the container's CPU use between the answer's
// precpu_stats and cpu_stats in percent of one CPU, as `docker stats`
// computes it: Δtotal_usage / Δsystem_cpu_usage × online CPUs × 100.
// It returns 0 when the answer has no previous sample or either delta is
// not positive.
func CPUPercent(r container.StatsResponse) float64 {
	cur, prev := r.CPUStats, r.PreCPUStats
	if prev.SystemUsage == 0 || cur.SystemUsage <= prev.SystemUsage || cur.CPUUsage.TotalUsage <= prev.CPUUsage.TotalUsage {
		return 0
	}
	cpus := float64(cur.OnlineCPUs)
	if cpus == 0 {
		cpus = float64(len(cur.CPUUsage.PercpuUsage))
	}
	cpuDelta := float64(cur.CPUUsage.TotalUsage - prev.CPUUsage.TotalUsage)
	sysDelta := float64(cur.SystemUsage - prev.SystemUsage)
	return cpuDelta / sysDelta * cpus * 100
}

// MemoryUsageNoCache returns the memory the container uses without the
// inactive file cache, as the docker CLI's calculateMemUsageUnixNoCache
// does: usage − total_inactive_file on cgroup v1, usage − inactive_file on
// cgroup v2, or usage itself when the statistic is missing or not smaller
// than usage.
func MemoryUsageNoCache(m container.MemoryStats) uint64 {
	if v, v1 := m.Stats["total_inactive_file"]; v1 && v < m.Usage {
		return m.Usage - v
	}
	if v := m.Stats["inactive_file"]; v < m.Usage {
		return m.Usage - v
	}
	return m.Usage
}

// BlockIO sums the bytes read and written by the container over all
// devices, from io_service_bytes_recursive: the entries with op "Read" and
// "Write" on cgroup v1, "read" and "write" on cgroup v2. Other ops (Sync,
// Async, Discard, Total) are not counted.
//
// On cgroup v1 with recent kernels the engine takes these numbers from
// blkio.throttle.io_service_bytes_recursive, which the kernel fills only
// for devices where blk-throttle is active (some cgroup has a throttle
// rule on the device). Without any rule the list is empty and both sums
// are 0; a container with a generous BlkioDeviceReadBps/WriteBps rule on
// the data-root disk is accounted. Writes are attributed to the container
// when it issues them itself (O_DIRECT, or fsync of its dirty pages);
// pages left for background writeback are not, because cgroup v1 has no
// writeback attribution.
func BlockIO(b container.BlkioStats) (read, write uint64) {
	for _, e := range b.IoServiceBytesRecursive {
		switch e.Op {
		case "Read", "read":
			read += e.Value
		case "Write", "write":
			write += e.Value
		}
	}
	return read, write
}
