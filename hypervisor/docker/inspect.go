package docker

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/dockervisor/dockervisor/hypervisor"
	"github.com/dockervisor/dockervisor/internal/enginestats"
)

// target is one instance as a per-instance call sees it, under the
// instance's lock: the engine client, the container, the durable record
// and the power state.
type target struct {
	id  string
	api APIClient
	cid string // the container's engine ID
	c   container.InspectResponse
	rec instanceRecord
	cur hypervisor.State
	// saved: rec is what the state directory holds, so writing it again
	// can be skipped.
	saved bool
	op    string // the driver operation at work, for the event stream
	// pending is the intent journal of the operation at work, if it has
	// one (see pending.go); written is the journal the record on disk
	// carries.
	pending, written *pendingOp
}

// inspect returns the container of instance id, or ErrNotFound, also for a
// container with our name that this driver did not label.
func (d *lifecycleRoom) inspect(ctx context.Context, api APIClient, id string) (container.InspectResponse, error) {
	res, err := api.ContainerInspect(ctx, d.containerName(id), client.ContainerInspectOptions{})
	if err != nil {
		return container.InspectResponse{}, classify(err, hypervisor.ErrNotFound)
	}
	c := res.Container
	if c.Config == nil || c.Config.Labels[d.label(labelInstanceID)] != id {
		return container.InspectResponse{}, fmt.Errorf("%w: %s: %w", hypervisor.ErrNotFound, d.containerName(id), errNotOurs)
	}
	return c, nil
}

// lockCurrent takes the lock of instance id and reads where the instance
// stands; the caller releases the lock with unlock. An operation that a
// dead process left half done on the instance is finished or undone
// first (see recover.go).
func (d *lifecycleRoom) lockCurrent(ctx context.Context, id string) (t *target, unlock func(), err error) {
	api, unlock, err := d.lockInstance(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	if _, _, err := d.records.recoverInterrupted(ctx, api, id); err != nil {
		unlock()
		return nil, nil, err
	}
	if t, err = d.current(ctx, api, id); err != nil {
		unlock()
		return nil, nil, err
	}
	return t, unlock, nil
}

// current returns instance id as it is now: container, record and power
// state. A container the engine is removing (the forced removal of a
// Destroy whose process died, say) is waited for, within ctx, and then
// is not found.
func (d *lifecycleRoom) current(ctx context.Context, api APIClient, id string) (*target, error) {
	c, err := d.inspect(ctx, api, id)
	if err != nil {
		return nil, err
	}
	if c.State != nil && c.State.Status == container.StateRemoving {
		if err := d.awaitRemoval(ctx, api, c.ID); err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("%w: %s: removed", hypervisor.ErrNotFound, d.containerName(id))
	}
	// A pause the engine repeats is no pause (pauseecho.go).
	if c, err = d.settlePause(ctx, api, c); err != nil {
		return nil, err
	}
	rec, err := d.state.load(id)
	if err != nil {
		return nil, err
	}
	rec.Pending = nil // the journal of an operation that is not this call's
	return &target{id: id, api: api, cid: c.ID, c: c, rec: rec, cur: powerState(engineStateOf(c), rec), saved: true}, nil
}

// awaitRemoval waits, within ctx, until the engine has removed container
// cid, whose removal is under way.
func (d *lifecycleRoom) awaitRemoval(ctx context.Context, api APIClient, cid string) error {
	wait := api.ContainerWait(ctx, cid, client.ContainerWaitOptions{Condition: container.WaitConditionRemoved})
	select {
	case <-wait.Result:
		return nil
	case err := <-wait.Error:
		if isNotFound(err) {
			return nil
		}
		return fmt.Errorf("wait for the removal of %s: %w", cid, classify(err, hypervisor.ErrNotFound))
	case <-ctx.Done():
		return ctx.Err()
	}
}

func engineStateOf(c container.InspectResponse) engineState {
	if c.State == nil {
		return engineState{}
	}
	return engineState{Status: c.State.Status, ExitCode: c.State.ExitCode, OOMKilled: c.State.OOMKilled}
}

// toInstance builds a hypervisor.Instance from an inspected container.
func (d *lifecycleRoom) toInstance(c container.InspectResponse, rec instanceRecord) hypervisor.Instance {
	spec, _ := d.specFromLabels(c.Config.Labels)
	inst := instanceFromSpec(spec)
	rec.applyFlavor(&inst)
	inst.BackendID = c.ID
	inst.State = powerState(engineStateOf(c), rec)
	if c.State != nil {
		inst.ExitCode = c.State.ExitCode
		if inst.State == hypervisor.StateRunning || inst.State == hypervisor.StatePaused {
			inst.PID = c.State.Pid
			inst.ExitCode = 0
		}
		inst.StartedAt = parseTime(c.State.StartedAt)
	}
	inst.CreatedAt = parseTime(c.Created)
	if rec.MetadataSet {
		inst.Metadata = rec.Metadata
	}
	inst.VIFs = recordedVIFs(rec.VIFs)
	return inst
}

func instanceFromSpec(s storedSpec) hypervisor.Instance {
	return hypervisor.Instance{
		ID:       s.ID,
		Name:     s.Name,
		Image:    s.Image,
		VCPUs:    s.VCPUs,
		MemoryMB: s.MemoryMB,
		Labels:   s.Labels,
		Metadata: s.Metadata,
		Boot:     hypervisor.BootMode(s.Boot),
	}
}

func parseTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil || t.Year() <= 1 {
		return time.Time{}
	}
	return t
}

// Info returns the instance with its power state, memory use and limit,
// and CPU time. It waits for the calls on id before it.
func (d *lifecycleRoom) Info(ctx context.Context, id string) (hypervisor.InstanceInfo, error) {
	info, err := d.info(ctx, id)
	return info, opErr("info", id, err)
}

func (d *lifecycleRoom) info(ctx context.Context, id string) (hypervisor.InstanceInfo, error) {
	t, unlock, err := d.lockCurrent(ctx, id)
	if err != nil {
		return hypervisor.InstanceInfo{}, err
	}
	defer unlock()
	info := hypervisor.InstanceInfo{Instance: d.toInstance(t.c, t.rec)}
	if t.c.HostConfig != nil && t.c.HostConfig.Memory > 0 {
		info.MaxMemoryBytes = uint64(t.c.HostConfig.Memory)
	} else if f, err := d.hosts.facts(ctx, t.api); err == nil {
		info.MaxMemoryBytes = f.memTotal
	}
	if info.State == hypervisor.StateRunning || info.State == hypervisor.StatePaused {
		s, err := enginestats.Fetch(ctx, t.api, t.cid, enginestats.Options{})
		if err != nil {
			if isNotFound(err) {
				return hypervisor.InstanceInfo{}, classify(err, hypervisor.ErrNotFound)
			}
			// The container may have stopped behind our back.
			d.log.DebugContext(ctx, "stats failed", "id", id, "err", err)
		} else {
			info.CPUTime = s.CPUTime
			info.MemoryBytes = s.MemoryBytes
		}
	}
	return info, nil
}

// List returns this driver's instances (by label), never other containers
// on the engine. PID and StartedAt are left zero: Info reports them. List
// takes no instance's lock, so a slow call on one instance never delays
// it; an instance in the middle of a transition is listed in the state the
// engine and the record show at that moment.
func (d *lifecycleRoom) List(ctx context.Context, opts hypervisor.ListOptions) ([]hypervisor.Instance, error) {
	out, err := d.list(ctx, opts)
	return out, opErr("list", "", err)
}

func (d *lifecycleRoom) list(ctx context.Context, opts hypervisor.ListOptions) ([]hypervisor.Instance, error) {
	api, err := d.engine(ctx)
	if err != nil {
		return nil, err
	}
	f := make(client.Filters).Add("label", d.label(labelInstanceID))
	for k, v := range opts.Labels {
		f.Add("label", k+"="+v)
	}
	res, err := api.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
	if err != nil {
		return nil, classify(err, hypervisor.ErrNotFound)
	}
	out := make([]hypervisor.Instance, 0, len(res.Items))
	for _, c := range res.Items {
		spec, ok := d.specFromLabels(c.Labels)
		if !ok || !slices.Contains(c.Names, "/"+d.containerName(spec.ID)) {
			continue
		}
		rec, err := d.state.load(spec.ID)
		if err != nil {
			return nil, err
		}
		inst := instanceFromSpec(spec)
		if rec.MetadataSet {
			inst.Metadata = rec.Metadata
		}
		rec.applyFlavor(&inst)
		inst.BackendID = c.ID
		inst.CreatedAt = time.Unix(c.Created, 0)
		es := engineState{Status: c.State}
		if (c.State == container.StateExited || c.State == container.StateDead) && !rec.PoweredOff && !rec.SoftDeleted {
			// Only the exit code tells a crash from a shutdown.
			ci, err := api.ContainerInspect(ctx, c.ID, client.ContainerInspectOptions{})
			if isNotFound(err) {
				continue
			}
			if err != nil {
				return nil, classify(err, hypervisor.ErrNotFound)
			}
			es.ExitCode, es.OOMKilled = ci.Container.State.ExitCode, ci.Container.State.OOMKilled
		}
		inst.State = powerState(es, rec)
		inst.ExitCode = es.ExitCode
		inst.VIFs = recordedVIFs(rec.VIFs)
		if len(opts.States) > 0 && !slices.Contains(opts.States, inst.State) {
			continue
		}
		out = append(out, inst)
	}
	slices.SortFunc(out, func(a, b hypervisor.Instance) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}
