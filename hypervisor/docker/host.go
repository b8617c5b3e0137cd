package docker

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/client"
	"golang.org/x/sync/singleflight"

	"github.com/dockervisor/dockervisor/hypervisor"
	"github.com/dockervisor/dockervisor/internal/enginestats"
	"github.com/dockervisor/dockervisor/stats"
)

// hostRoom is the Driver's room of the host: facts, resources and instance
// statistics.
type hostRoom struct {
	*core
	osInst cgroupNoter
}

// HypervisorType is what HostResources reports as the hypervisor type.
const HypervisorType = "docker"

// hostState is what the Driver keeps between host and instance samples.
// Its mutex guards the fields only and is never held across I/O.
type hostState struct {
	mu      sync.Mutex
	facts   *engineFacts
	sampler localSampler // made on first use, for the engine's data root
	cpu     map[string]stats.CPUPoint
	reads   singleflight.Group // the engine's info call, one at a time
}

// localSampler samples the host this process runs on.
type localSampler interface {
	Sample(ctx context.Context) (stats.Host, error)
}

// engineFacts are the engine's static facts: they do not change while the
// daemon runs, so they are read once (the engine's info call is slow).
type engineFacts struct {
	name, version, rootDir string
	kernel                 string
	ncpu                   int
	memTotal               uint64
}

// facts returns the engine's static facts, reading them on first use.
// Concurrent first callers share one read; a failed read is retried on the
// next call.
func (d *hostRoom) facts(ctx context.Context, api APIClient) (engineFacts, error) {
	d.host.mu.Lock()
	f := d.host.facts
	d.host.mu.Unlock()
	if f != nil {
		return *f, nil
	}
	ch := d.host.reads.DoChan("info", func() (any, error) {
		info, err := api.Info(ctx, client.InfoOptions{})
		if err != nil {
			return nil, classify(err, hypervisor.ErrNotFound)
		}
		f := &engineFacts{
			name:     info.Info.Name,
			version:  info.Info.ServerVersion,
			rootDir:  info.Info.DockerRootDir,
			kernel:   info.Info.KernelVersion,
			ncpu:     info.Info.NCPU,
			memTotal: uint64(max(info.Info.MemTotal, 0)),
		}
		d.host.mu.Lock()
		d.host.facts = f
		d.host.mu.Unlock()
		d.osInst.noteCgroupVersion(info.Info.CgroupVersion)
		return f, nil
	})
	select {
	case <-ctx.Done():
		return engineFacts{}, ctx.Err()
	case res := <-ch:
		if res.Err != nil {
			return engineFacts{}, res.Err
		}
		return *res.Val.(*engineFacts), nil
	}
}

// localSampler returns the sampler of this machine when the engine runs
// on it and this system has /proc, and nil otherwise.
func (d *hostRoom) localSampler(rootDir string) localSampler {
	if !d.isLocalEngine() {
		return nil
	}
	d.host.mu.Lock()
	defer d.host.mu.Unlock()
	if d.host.sampler == nil {
		d.host.sampler = newLocalSampler(rootDir)
	}
	return d.host.sampler
}

// isLocalEngine reports whether the engine runs on this machine (a unix
// socket), so that /proc and statfs describe its host.
func (d *hostRoom) isLocalEngine() bool {
	h := d.opts.host
	if h == "" {
		h = os.Getenv(client.EnvOverrideHost)
	}
	return h == "" || strings.HasPrefix(h, "unix://")
}

// HostResources samples the node: CPUs, memory and the engine's data root
// disk of the host, CPU utilisation since the previous call, load and
// uptime, plus the vCPUs, memory and states of this driver's instances
// (never other containers). Memory is in MiB, disk in GiB. For an engine
// reached over TCP the host-side figures come from the engine (CPUs and
// total memory) and the rest stay zero, since this process cannot read
// that host's kernel.
func (d *hostRoom) HostResources(ctx context.Context) (stats.Host, error) {
	h, err := d.hostResources(ctx)
	return h, opErr("host-resources", "", err)
}

func (d *hostRoom) hostResources(ctx context.Context) (stats.Host, error) {
	api, err := d.engine(ctx)
	if err != nil {
		return stats.Host{}, err
	}
	f, err := d.facts(ctx, api)
	if err != nil {
		return stats.Host{}, err
	}
	var h stats.Host
	if sampler := d.localSampler(f.rootDir); sampler != nil {
		if h, err = sampler.Sample(ctx); err != nil {
			return stats.Host{}, err
		}
	} else {
		h = stats.Host{
			Time:     time.Now(),
			Hostname: f.name,
			VCPUs:    f.ncpu,
			MemoryMB: int64(f.memTotal >> 20),
		}
	}
	h.HypervisorType = HypervisorType
	h.HypervisorVersion = f.version
	h.APIVersion = api.ClientVersion()

	list, err := d.life.list(ctx, hypervisor.ListOptions{})
	if err != nil {
		return stats.Host{}, err
	}
	h.Instances = make(map[string]int)
	for _, inst := range list {
		// Every instance on the node holds its flavor, stopped or not,
		// as a compute agent accounts for it.
		h.VCPUsUsed += inst.VCPUs
		h.MemoryClaimedMB += inst.MemoryMB
		h.Instances[inst.State.String()]++
	}
	return h, nil
}

// AvailableNodes returns the node this driver serves: the name set with
// WithNodeName, else the engine host's name.
func (d *hostRoom) AvailableNodes(ctx context.Context) ([]string, error) {
	if d.opts.nodeName != "" {
		return []string{d.opts.nodeName}, nil
	}
	api, err := d.engine(ctx)
	if err != nil {
		return nil, opErr("available-nodes", "", err)
	}
	f, err := d.facts(ctx, api)
	if err != nil {
		return nil, opErr("available-nodes", "", err)
	}
	return []string{f.name}, nil
}

// InstanceStats samples one instance: CPU time and CPU percent (of one CPU,
// over the time since this Driver's previous sample of the instance, or
// over the engine's one-second window on the first call), memory use and
// limit, block I/O, and the counters of every interface in the instance's
// network namespace, read there through netlink because the engine does
// not see interfaces it did not create. A stopped instance has zero usage
// and no interfaces. A sample that races a restart of the instance (a
// reboot) is taken again; an instance that restarts during every one of
// statsAttempts samples gives ErrUnavailable.
func (d *hostRoom) InstanceStats(ctx context.Context, id string) (stats.Instance, error) {
	for attempt := 1; ; attempt++ {
		s, err := d.instanceStats(ctx, id)
		if errors.Is(err, errRestarted) {
			if attempt < statsAttempts && ctx.Err() == nil {
				continue
			}
			err = fmt.Errorf("%w: %w during each of %d samples", hypervisor.ErrUnavailable, err, attempt)
		}
		return s, opErr("instance-stats", id, err)
	}
}

// statsAttempts bounds the samples InstanceStats takes of an instance that
// keeps restarting while it is sampled.
const statsAttempts = 10

// errRestarted means the instance's process changed while it was sampled.
var errRestarted = errors.New("instance restarted while it was sampled")

func (d *hostRoom) instanceStats(ctx context.Context, id string) (stats.Instance, error) {
	t, unlock, err := d.life.lockCurrent(ctx, id)
	if err != nil {
		return stats.Instance{}, err
	}
	defer unlock()
	c := t.c
	if t.cur != hypervisor.StateRunning && t.cur != hypervisor.StatePaused {
		d.host.mu.Lock()
		delete(d.host.cpu, id)
		d.host.mu.Unlock()
		return stats.Instance{ID: id, Time: time.Now(), Interfaces: []stats.Interface{}}, nil
	}

	// Hold the namespace open before anything else, then check that the
	// pid still belongs to the container, so that a reused pid cannot
	// give another process's counters.
	ns, err := openNetNS(c.State.Pid)
	if err != nil {
		// The process exited since the inspect: a restart or a stop.
		return stats.Instance{}, fmt.Errorf("%w: open network namespace: %w", errRestarted, err)
	}
	if ns != nil {
		defer ns.Close()
	}

	d.host.mu.Lock()
	prev, havePrev := d.host.cpu[id]
	d.host.mu.Unlock()
	s, err := enginestats.Fetch(ctx, t.api, c.ID, enginestats.Options{IncludePreviousSample: !havePrev})
	if err != nil {
		return stats.Instance{}, classify(err, hypervisor.ErrNotFound)
	}
	s.ID = id
	if havePrev {
		s.CPUPercent = stats.CPUPercent(prev, stats.CPUPoint{CPUTime: s.CPUTime, Wall: s.Time})
	}
	d.host.mu.Lock()
	if d.host.cpu == nil {
		d.host.cpu = make(map[string]stats.CPUPoint)
	}
	d.host.cpu[id] = stats.CPUPoint{CPUTime: s.CPUTime, Wall: s.Time}
	d.host.mu.Unlock()

	again, err := d.life.inspect(ctx, t.api, id)
	if err != nil {
		return stats.Instance{}, err
	}
	if again.State.Pid != c.State.Pid {
		return stats.Instance{}, errRestarted
	}
	ifaces, err := interfaceCounters(ctx, ns)
	if err != nil {
		return stats.Instance{}, err
	}
	stats.AttachPortIDs(ifaces, portsByDevice(t.rec.VIFs))
	s.Interfaces = ifaces
	return s, nil
}
