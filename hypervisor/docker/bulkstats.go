package docker

import (
	"context"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"golang.org/x/sync/errgroup"

	"github.com/dockervisor/dockervisor/hypervisor"
	"github.com/dockervisor/dockervisor/internal/enginestats"
	"github.com/dockervisor/dockervisor/stats"
)

// bulkStatsWorkers bounds the concurrent engine stats calls of
// AllInstanceStats when it cannot read the kernel's counters itself.
const bulkStatsWorkers = 8

// AllInstanceStats samples every instance of this driver in one call,
// sorted by ID. With a local engine it lists the containers once and reads
// each running instance's counters straight from its cgroup (CPU time,
// memory without the inactive file cache, as the engine computes it,
// memory limit, block I/O) and its interfaces from its network namespace,
// which costs a few file reads per instance instead of an engine stats
// call (which takes the engine tens of milliseconds). An instance whose
// cgroup cannot be read, and every instance of a remote engine, is
// sampled with the engine's one-shot statistics, several at a time. CPU
// percent is over the time since this Driver's previous sample of the
// instance (by InstanceStats or here); zero on the first. Instances
// without a process have zero usage. It takes no instance's lock.
func (d *hostRoom) AllInstanceStats(ctx context.Context) ([]stats.Instance, error) {
	out, err := d.allInstanceStats(ctx)
	return out, opErr("all-instance-stats", "", err)
}

type bulkItem struct {
	id, cid string
	running bool
}

func (d *hostRoom) allInstanceStats(ctx context.Context) ([]stats.Instance, error) {
	api, err := d.engine(ctx)
	if err != nil {
		return nil, err
	}
	facts, err := d.facts(ctx, api)
	if err != nil {
		return nil, err
	}
	list, err := api.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: make(client.Filters).Add("label", d.label(labelInstanceID))})
	if err != nil {
		return nil, classify(err, hypervisor.ErrNotFound)
	}
	var items []bulkItem
	for _, c := range list.Items {
		spec, ok := d.specFromLabels(c.Labels)
		if !ok || !slices.Contains(c.Names, "/"+d.containerName(spec.ID)) {
			continue
		}
		items = append(items, bulkItem{id: spec.ID, cid: c.ID, running: c.State == container.StateRunning || c.State == container.StatePaused})
	}
	slices.SortFunc(items, func(a, b bulkItem) int { return strings.Compare(a.id, b.id) })

	out := make([]stats.Instance, len(items))
	keep := make([]bool, len(items))
	var viaEngine []int
	var reader cgroupReader
	if d.isLocalEngine() {
		for _, it := range items {
			if it.running {
				reader = d.cgroups(ctx, api, it.cid)
				break
			}
		}
	}
	if reader != nil {
		keep := make(map[string]bool, len(items))
		for _, it := range items {
			keep[it.cid] = true
		}
		reader.retain(keep)
	}
	for i, it := range items {
		if !it.running {
			out[i], keep[i] = stats.Instance{ID: it.id, Time: time.Now(), Interfaces: []stats.Interface{}}, true
			continue
		}
		if reader == nil {
			viaEngine = append(viaEngine, i)
			continue
		}
		s, err := reader.sample(ctx, it.cid, facts.memTotal)
		if err != nil {
			d.log.DebugContext(ctx, "cgroup sample", "id", it.id, "err", err)
			viaEngine = append(viaEngine, i)
			continue
		}
		s.ID = it.id
		out[i], keep[i] = s, true
	}
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(bulkStatsWorkers)
	for _, i := range viaEngine {
		g.Go(func() error {
			s, err := enginestats.Fetch(gctx, api, items[i].cid, enginestats.Options{})
			if isNotFound(err) {
				return nil // gone since the list
			}
			if err != nil {
				return classify(err, hypervisor.ErrNotFound)
			}
			s.ID = items[i].id
			if s.Interfaces == nil {
				s.Interfaces = []stats.Interface{}
			}
			mu.Lock()
			out[i], keep[i] = s, true
			mu.Unlock()
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	res := make([]stats.Instance, 0, len(out))
	d.host.mu.Lock()
	if d.host.cpu == nil {
		d.host.cpu = make(map[string]stats.CPUPoint)
	}
	for i, s := range out {
		if !keep[i] {
			continue
		}
		if items[i].running {
			p := stats.CPUPoint{CPUTime: s.CPUTime, Wall: s.Time}
			if prev, ok := d.host.cpu[s.ID]; ok {
				s.CPUPercent = stats.CPUPercent(prev, p)
			}
			d.host.cpu[s.ID] = p
		} else {
			delete(d.host.cpu, s.ID)
		}
		res = append(res, s)
	}
	d.host.mu.Unlock()
	return res, nil
}

// cgroupReader reads a container's counters from the kernel.
type cgroupReader interface {
	sample(ctx context.Context, cid string, memTotal uint64) (stats.Instance, error)
	// memoryUsage is the memory the container uses, without the inactive
	// file cache (as the engine reports it).
	memoryUsage(cid string) (uint64, error)
	// frozen reports whether the container's freezer is frozen or
	// freezing (pauseecho.go).
	frozen(cid string) (bool, error)
	// retain forgets what the reader learnt of containers keep does
	// not hold.
	retain(keep map[string]bool)
}

// bulkState caches where the engine puts its containers' cgroups.
type bulkState struct {
	mu     sync.Mutex
	reader cgroupReader
}

// cgroups returns the reader of this engine's container cgroups, found
// from container cid's process once, or nil if they cannot be read here.
func (d *hostRoom) cgroups(ctx context.Context, api APIClient, cid string) cgroupReader {
	d.bulk.mu.Lock()
	r := d.bulk.reader
	d.bulk.mu.Unlock()
	if r != nil {
		return r
	}
	res, err := api.ContainerInspect(ctx, cid, client.ContainerInspectOptions{})
	if err != nil || res.Container.State == nil || res.Container.State.Pid <= 0 {
		return nil
	}
	r = newCgroupReader(res.Container.State.Pid, res.Container.ID)
	if r == nil {
		return nil
	}
	d.bulk.mu.Lock()
	d.bulk.reader = r
	d.bulk.mu.Unlock()
	return r
}
