package docker

import (
	"context"
	"errors"
	"fmt"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/dockervisor/dockervisor/hypervisor"
	"github.com/dockervisor/dockervisor/internal/enginestats"
)

// Resize changes the instance's limits in place with the engine's update
// call, running or stopped, without a restart: CPU shares (1024 a vCPU),
// the CFS quota of HardCPULimit, and memory with its swap limit set to
// the same value (no swap beyond the limit). The new flavor is recorded in
// the state directory, and the engine keeps the limits in the container's
// host configuration, which no start passes again: they hold across every
// later transition and an engine restart, and Info, List and
// HostResources report them.
//
// Refused, changing nothing: a memory limit below what a running instance
// uses now (a *hypervisor.LimitError), a hard cap above the engine's CPUs
// (a *hypervisor.LimitError), removing a memory limit (the engine cannot
// lift one from a container), a soft-deleted instance (ErrInvalidState).
// Removing a hard cap leaves a cap at the engine's CPU count, which is no
// cap, since the engine cannot lift a quota either.
func (d *lifecycleRoom) Resize(ctx context.Context, id string, f hypervisor.Flavor) error {
	return opErr("resize", id, d.resize(ctx, id, f))
}

func (d *lifecycleRoom) resize(ctx context.Context, id string, f hypervisor.Flavor) error {
	if err := hypervisor.ValidateID(id); err != nil {
		return err
	}
	if err := f.Validate(); err != nil {
		return err
	}
	t, unlock, err := d.lockCurrent(ctx, id)
	if err != nil {
		return err
	}
	defer unlock()
	if err := hypervisor.CheckState("resize", id, t.cur, hypervisor.ResizeStates...); err != nil {
		return err
	}
	facts, err := d.hosts.facts(ctx, t.api)
	if err != nil {
		return err
	}
	vcpus := f.EffectiveVCPUs()
	if f.HardCPULimit && facts.ncpu > 0 && vcpus > facts.ncpu {
		return &hypervisor.LimitError{ID: id, Resource: "vcpus", Want: int64(vcpus), Have: int64(facts.ncpu)}
	}
	old := container.Resources{}
	if t.c.HostConfig != nil {
		old = t.c.HostConfig.Resources
	}
	if f.MemoryMB == 0 && old.Memory > 0 {
		return fmt.Errorf("%w: the memory limit of a live instance cannot be removed", hypervisor.ErrInvalidArgument)
	}
	if f.MemoryMB > 0 && (t.cur == hypervisor.StateRunning || t.cur == hypervisor.StatePaused) {
		used, err := d.memoryUsage(ctx, t.api, t.cid)
		if err != nil {
			return err
		}
		if want := uint64(f.MemoryMB) << 20; want < used {
			return &hypervisor.LimitError{ID: id, Resource: "memory", Want: int64(want), Have: int64(used)}
		}
	}
	res := resizeResources(f, old, facts.ncpu)
	done := d.ops.begin(t.cid, "resize")
	defer done()
	nf := f
	nf.VCPUs = vcpus
	// The journal holds both limits before the engine changes any, so
	// that a new Driver finishes or undoes a resize whose process died
	// (recover.go).
	p := d.records.beginOp(t, pendResize)
	p.OldLimits, p.NewLimits, p.Flavor = limitsOf(old), limitsOf(withSwapOf(res, old)), &nf
	if err := d.records.save(t, t.rec); err != nil {
		return err
	}
	// The engine goes on serving an update whose client died: the journal
	// says it may be in flight, so that a new Driver finishes the resize
	// rather than race it.
	if err := d.records.markSent(t, sentUpdate); err != nil {
		return errors.Join(err, d.records.endOp(t))
	}
	if err := d.update(ctx, t.api, t.cid, res, old); err != nil {
		return errors.Join(err, d.records.endOp(t))
	}
	rec := t.rec
	rec.Flavor = &nf
	t.pending = nil
	if err := d.records.save(t, rec); err != nil {
		// Put the old limits back: the record is the source of truth.
		rctx, cancel := d.cleanupContext(ctx)
		defer cancel()
		back := container.Resources{CPUShares: old.CPUShares, NanoCPUs: old.NanoCPUs, Memory: old.Memory, MemorySwap: old.MemorySwap}
		_, uerr := t.api.ContainerUpdate(rctx, t.cid, client.ContainerUpdateOptions{Resources: &back})
		return errors.Join(err, uerr)
	}
	ev := nf
	d.events.publish(hypervisor.Event{Type: hypervisor.EventResized, ID: id, Reason: hypervisor.ReasonRequested, Operation: "resize", Flavor: &ev})
	return nil
}

// resizeResources maps a flavor to the engine's update: the engine
// leaves zero fields alone, so a hard cap that goes is set to the host's
// CPUs, and memory and swap always go together.
func resizeResources(f hypervisor.Flavor, old container.Resources, ncpu int) container.Resources {
	vcpus := f.EffectiveVCPUs()
	res := container.Resources{CPUShares: int64(vcpus) * cpuSharesPerVCPU}
	switch {
	case f.HardCPULimit:
		res.NanoCPUs = int64(vcpus) * 1e9
	case old.NanoCPUs > 0 && ncpu > 0:
		res.NanoCPUs = int64(ncpu) * 1e9
	}
	if f.MemoryMB > 0 {
		res.Memory = f.MemoryMB << 20
		res.MemorySwap = res.Memory
	}
	return res
}

// update applies res. Lowering memory below the current swap limit is
// fine since both change together; raising it above the current swap
// limit too.
func (d *lifecycleRoom) update(ctx context.Context, api APIClient, cid string, res, _ container.Resources) error {
	if _, err := api.ContainerUpdate(ctx, cid, client.ContainerUpdateOptions{Resources: &res}); err != nil {
		return classify(err, hypervisor.ErrNotFound)
	}
	return nil
}

// memoryUsage returns what container cid uses now: read from its cgroup
// when the engine is local (a file read), else from the engine's
// statistics (which the engine answers on its next collection tick, up to
// a second later).
func (d *lifecycleRoom) memoryUsage(ctx context.Context, api APIClient, cid string) (uint64, error) {
	if d.hosts.isLocalEngine() {
		if r := d.hosts.cgroups(ctx, api, cid); r != nil {
			if used, err := r.memoryUsage(cid); err == nil {
				return used, nil
			}
		}
	}
	s, err := enginestats.Fetch(ctx, api, cid, enginestats.Options{})
	if err != nil {
		return 0, classify(err, hypervisor.ErrNotFound)
	}
	return s.MemoryBytes, nil
}

// withSwapOf returns res as the engine keeps it after an update with res
// from old: fields the update leaves zero keep their old values.
func withSwapOf(res, old container.Resources) container.Resources {
	if res.NanoCPUs == 0 {
		res.NanoCPUs = old.NanoCPUs
	}
	if res.Memory == 0 {
		res.Memory, res.MemorySwap = old.Memory, old.MemorySwap
	}
	return res
}
