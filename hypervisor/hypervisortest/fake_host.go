package hypervisortest

import (
	"context"
	"fmt"
	"slices"

	"github.com/dockervisor/dockervisor/hypervisor"
	"github.com/dockervisor/dockervisor/stats"
)

// HostResources reports the simulated host: the totals given with
// [WithHost]; the vCPUs and memory limits of every instance (in any state)
// as used and claimed; and the simulated memory use of running and paused
// instances.
func (f *Fake) HostResources(ctx context.Context) (stats.Host, error) {
	const op = "host-resources"
	if err := ctx.Err(); err != nil {
		return stats.Host{}, hypervisor.WrapOp(op, "", err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return stats.Host{}, hypervisor.WrapOp(op, "", errUnavailable())
	}
	now := f.now()
	h := stats.Host{
		Time:              now,
		Hostname:          f.opts.hostname,
		HypervisorType:    FakeHypervisorType,
		HypervisorVersion: "1.0.0",
		APIVersion:        "1.0",
		VCPUs:             f.opts.vcpus,
		MemoryMB:          f.opts.memoryMB,
		DiskGB:            f.opts.diskGB,
		DiskUsedGB:        1,
		Uptime:            now.Sub(f.created),
		Instances:         make(map[string]int),
	}
	var usedBytes uint64
	running := 0
	for _, fi := range f.instances {
		h.VCPUsUsed += fi.inst.VCPUs
		h.MemoryClaimedMB += fi.inst.MemoryMB
		h.Instances[fi.inst.State.String()]++
		used, _ := f.memory(fi)
		usedBytes += used
		if fi.inst.State == hypervisor.StateRunning {
			running += fi.inst.VCPUs
		}
	}
	h.MemoryUsedMB = min(int64(usedBytes>>20), h.MemoryMB)
	h.MemoryFreeMB = h.MemoryMB - h.MemoryUsedMB
	h.CPUUtilization = min(100, 100*float64(running)/float64(h.VCPUs))
	load := float64(running)
	h.LoadAverage = [3]float64{load, load, load}
	return h, nil
}

// AvailableNodes returns the simulated host's name.
func (f *Fake) AvailableNodes(ctx context.Context) ([]string, error) {
	const op = "available-nodes"
	if err := ctx.Err(); err != nil {
		return nil, hypervisor.WrapOp(op, "", err)
	}
	if f.isClosed() {
		return nil, hypervisor.WrapOp(op, "", errUnavailable())
	}
	return []string{f.opts.hostname}, nil
}

// InstanceStats samples an instance's simulated usage: CPU time and memory
// as Info reports them, and one interface per plugged VIF while the
// instance has a process.
func (f *Fake) InstanceStats(ctx context.Context, id string) (stats.Instance, error) {
	var s stats.Instance
	err := f.with(ctx, "instance-stats", id, func(fi *fakeInstance) error {
		s = f.sample(fi)
		return nil
	})
	return s, err
}

// sample returns fi's simulated usage. Caller holds f.mu.
func (f *Fake) sample(fi *fakeInstance) stats.Instance {
	s := stats.Instance{ID: fi.inst.ID, Time: f.now(), CPUTime: f.cpuTime(fi), Interfaces: []stats.Interface{}}
	if fi.inst.State == hypervisor.StateRunning {
		s.CPUPercent = 100
	}
	s.MemoryBytes, s.MemoryLimitBytes = f.memory(fi)
	if slices.Contains(stHasProcess, fi.inst.State) {
		for i, v := range fi.vifs {
			s.Interfaces = append(s.Interfaces, stats.Interface{PortID: v.ID, Device: fmt.Sprintf("eth%d", i)})
		}
	}
	return s
}
