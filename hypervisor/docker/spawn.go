package docker

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/client"

	"github.com/dockervisor/dockervisor/hypervisor"
	"github.com/dockervisor/dockervisor/hypervisor/internal/bootdata"
	"github.com/dockervisor/dockervisor/internal/undo"
)

// cpuSharesPerVCPU maps a flavor's vCPUs to CPU shares.
const cpuSharesPerVCPU = 1024

// Spawn creates and starts an instance: validate, ensure-image, create,
// plug-vifs, then the start path (start, attach-vifs and the other
// post-start steps). A failure in any step undoes the steps before it,
// each undo bounded in time, so a failed Spawn leaves no container and no
// state behind. A taken ID returns ErrAlreadyExists and leaves the existing
// instance alone.
func (d *lifecycleRoom) Spawn(ctx context.Context, spec hypervisor.InstanceSpec) (hypervisor.Instance, error) {
	return d.SpawnWithOptions(ctx, spec, hypervisor.SpawnOptions{})
}

// SpawnWithOptions is Spawn; with opts.CreateOnly it stops after
// plug-vifs and leaves the instance created (see hypervisor.Creator).
func (d *lifecycleRoom) SpawnWithOptions(ctx context.Context, spec hypervisor.InstanceSpec, opts hypervisor.SpawnOptions) (hypervisor.Instance, error) {
	inst, err := d.spawn(ctx, spec, opts)
	return inst, opErr("spawn", spec.ID, err)
}

func (d *lifecycleRoom) spawn(ctx context.Context, spec hypervisor.InstanceSpec, opts hypervisor.SpawnOptions) (hypervisor.Instance, error) {
	d.step(StepValidate)
	if err := spec.Validate(); err != nil {
		return hypervisor.Instance{}, err
	}
	if err := bootdata.Validate(spec); err != nil {
		return hypervisor.Instance{}, err
	}
	if err := d.checkUserLabels(spec.Labels); err != nil {
		return hypervisor.Instance{}, err
	}
	if err := d.vifs.checkVIFsSupported(spec.VIFs); err != nil {
		return hypervisor.Instance{}, err
	}
	api, unlock, err := d.lockInstance(ctx, spec.ID)
	if err != nil {
		return hypervisor.Instance{}, err
	}
	defer unlock()

	if _, err := d.inspect(ctx, api, spec.ID); err == nil {
		return hypervisor.Instance{}, fmt.Errorf("%w: %s", hypervisor.ErrAlreadyExists, spec.ID)
	} else if !isNotFound(err) {
		return hypervisor.Instance{}, err
	}
	if err := d.vifs.checkDeviceNames(spec.ID, spec.VIFs); err != nil {
		return hypervisor.Instance{}, err
	}

	u := undo.Stack{StepTimeout: d.cleanupTimeout, Log: d.log, Op: "spawn", ID: spec.ID}
	defer func() { _ = u.Rollback(ctx) }() // logs what it cannot undo

	d.step(StepEnsureImage)
	engineImage, inspected, err := d.images.ensureImageInspected(ctx, api, spec.Image)
	if err != nil {
		return hypervisor.Instance{}, err
	}

	cs := newContainerSpec(spec, engineImage)
	if cs.os, cs.imageID, err = d.osInst.resolveBoot(ctx, api, spec, engineImage, inspected); err != nil {
		return hypervisor.Instance{}, err
	}

	d.step(StepCreate)
	// The spawn mark stays until the spawn has ended, start and post-start
	// steps included; its journal names the owner, so that Reconcile tells
	// a spawn of a live process from one whose process died.
	p := &pendingOp{Op: pendSpawn, Owner: d.owner, Since: time.Now()}
	rec := instanceRecord{Spawning: true, CreatedAt: p.Since, Pending: p}
	if err := d.state.save(spec.ID, rec); err != nil {
		return hypervisor.Instance{}, err
	}
	rec.Pending = nil
	t := &target{id: spec.ID, api: api, cur: hypervisor.StateCreated, rec: rec, saved: true, op: "spawn", pending: p, written: p}
	ownRecord := true
	u.Push(func(context.Context) error {
		if !ownRecord {
			return nil
		}
		return d.state.remove(spec.ID, true)
	})
	if cs.mounts, err = d.vifs.netFileMounts(spec.ID, spec.VIFs, &u); err != nil {
		return hypervisor.Instance{}, err
	}
	cs.sysctls = d.vifs.netSysctls()
	cs.sending = func() error { return d.records.markSent(t, "create") }
	cid, err := d.create(ctx, api, cs, &u)
	if errors.Is(err, hypervisor.ErrAlreadyExists) {
		// Another spawn of this ID (another process on the same state
		// directory) created the container first: the record, the
		// config drive and network files at the instance's paths are its
		// now, and this spawn's rollback must not remove them.
		ownRecord = false
		u.Release()
	}
	if err != nil {
		return hypervisor.Instance{}, err
	}

	// The VIFs are recorded before they are plugged, so that whatever is
	// plugged is found again (by a retry, or Destroy after a crash).
	d.step(StepPlugVIFs)
	t.cid = cid
	rec = t.rec
	rec.VIFs = newVIFRecords(hypervisor.CloneVIFs(spec.VIFs))
	if len(rec.VIFs) > 0 {
		if err := d.records.save(t, rec); err != nil {
			return hypervisor.Instance{}, err
		}
		for _, r := range rec.VIFs {
			if err := d.vifs.plugVIF(ctx, spec.ID, r.VIF, &u); err != nil {
				return hypervisor.Instance{}, err
			}
		}
	}

	if opts.CreateOnly {
		rec.Spawning = false
		rec.Intent = intentCreated
		t.pending = nil
		if err := d.records.save(t, rec); err != nil {
			return hypervisor.Instance{}, err
		}
		u.Release()
		res, err := api.ContainerInspect(ctx, cid, client.ContainerInspectOptions{})
		if err != nil {
			return hypervisor.Instance{}, classify(err, hypervisor.ErrNotFound)
		}
		return d.toInstance(res.Container, rec), nil
	}
	done := d.ops.begin(cid, t.op)
	defer done()
	c, err := d.startInstance(ctx, t, rec)
	if err != nil {
		return hypervisor.Instance{}, err
	}
	rec = t.rec
	rec.Spawning = false
	t.pending = nil
	if err := d.records.save(t, rec); err != nil {
		return hypervisor.Instance{}, err
	}
	u.Release()
	d.log.DebugContext(ctx, "spawned", "id", spec.ID, "container", cid)
	return d.toInstance(c, t.rec), nil
}

// mountTargets returns where hc mounts something into the container (the
// Driver sets Mounts and Tmpfs, never Binds).
func mountTargets(hc *container.HostConfig) []string {
	var ts []string
	for _, m := range hc.Mounts {
		ts = append(ts, m.Target)
	}
	for t := range hc.Tmpfs {
		ts = append(ts, t)
	}
	return ts
}

// containerSpec is what create needs to make an instance's container.
type containerSpec struct {
	spec        hypervisor.InstanceSpec
	engineImage string            // the engine's reference of the instance image
	mounts      []mount.Mount     // the config drive; the instance's resolv.conf, with a VIF driver
	sysctls     map[string]string // IPv6 on, with a VIF driver
	os          bool              // an OS instance (see osinstance.go)
	imageID     string            // an OS instance's image ID, when known (see executableCache)
	gate        bool              // an OS instance whose init waits for the cgroup gate
	// sending, if set, runs just before the create request is sent: it
	// notes the request in the operation's journal (see pendingOp.Sent).
	sending func() error
}

func newContainerSpec(spec hypervisor.InstanceSpec, engineImage string) containerSpec {
	return containerSpec{spec: spec, engineImage: engineImage}
}

// stored returns the spawn-time spec kept in the container's labels.
func (cs containerSpec) stored() storedSpec {
	s := cs.spec
	return storedSpec{
		Version:      specLabelVersion,
		ID:           s.ID,
		Name:         s.Hostname(),
		Image:        s.Image,
		EngineImage:  cs.engineImage,
		VCPUs:        s.EffectiveVCPUs(),
		HardCPULimit: s.HardCPULimit,
		MemoryMB:     s.MemoryMB,
		Labels:       s.Labels,
		Metadata:     s.Metadata,
		Command:      s.Command,
		Env:          s.Env,
		Boot:         cs.boot(),
		CgroupGate:   cs.gate,
	}
}

// boot is the stored boot mode: "os" for an OS instance.
func (cs containerSpec) boot() string {
	if cs.os {
		return string(hypervisor.BootOS)
	}
	return ""
}

// resources maps the flavor to the engine's limits: CPU shares per vCPU,
// a CFS quota with HardCPULimit, memory without extra swap.
func (cs containerSpec) resources() container.Resources {
	vcpus := cs.spec.EffectiveVCPUs()
	res := container.Resources{CPUShares: int64(vcpus) * cpuSharesPerVCPU}
	if cs.spec.HardCPULimit {
		res.NanoCPUs = int64(vcpus) * 1e9
	}
	if cs.spec.MemoryMB > 0 {
		res.Memory = cs.spec.MemoryMB << 20
		res.MemorySwap = res.Memory // no swap beyond the limit
	}
	return res
}

// env returns the environment in a stable order.
func (cs containerSpec) env() []string {
	env := make([]string, 0, len(cs.spec.Env))
	for _, k := range slices.Sorted(maps.Keys(cs.spec.Env)) {
		env = append(env, k+"="+cs.spec.Env[k])
	}
	return env
}

// create creates the container and its state record, registering their
// undo first.
func (d *lifecycleRoom) create(ctx context.Context, api APIClient, cs containerSpec, u *undo.Stack) (string, error) {
	drive, err := d.guest.prepareGuest(ctx, cs.spec, u)
	if err != nil {
		return "", err
	}
	cs.mounts = append(cs.mounts, drive...)
	cid, err := d.createContainer(ctx, api, cs, u)
	if err != nil {
		return "", err
	}
	u.Push(func(context.Context) error { return d.state.remove(cs.spec.ID, true) })
	return cid, nil
}

// createContainer creates the instance's container (the one create path
// of Spawn and Rebuild) and registers its removal.
func (d *lifecycleRoom) createContainer(ctx context.Context, api APIClient, cs containerSpec, u *undo.Stack) (string, error) {
	if err := d.checkRuntime(ctx, api); err != nil {
		return "", err
	}
	var mode cgroupMode
	if cs.os {
		var err error
		if mode, err = d.osInst.osCgroupMode(ctx, api); err != nil {
			return "", err
		}
		cs.gate = mode == cgroupV2Gate
	}
	labels, err := d.containerLabels(cs.stored())
	if err != nil {
		return "", err
	}
	name := d.containerName(cs.spec.ID)
	cfg := &container.Config{
		Hostname: cs.spec.Hostname(),
		Image:    cs.engineImage,
		Cmd:      cs.spec.Command,
		Env:      cs.env(),
		Labels:   labels,
		// The runtime makes the instance's network namespace (loopback
		// up, nothing else): the engine's network stack has nothing to
		// do for an instance whose interfaces are the VIF driver's, and
		// without it the engine starts a container in about half the
		// time (no network sandbox, no prestart hook that runs the
		// engine's binary again). Its hosts file is the Driver's.
		NetworkDisabled: true,
	}
	hc := &container.HostConfig{
		NetworkMode: "none",
		Runtime:     d.opts.runtime,
		Resources:   cs.resources(),
		Mounts:      cs.mounts,
		Sysctls:     cs.sysctls,
	}
	guestConfig(cfg)
	if cs.os {
		cs.osConfig(cfg, hc, mode)
	}
	if cs.sending != nil {
		if err := cs.sending(); err != nil {
			return "", err
		}
	}
	created, err := api.ContainerCreate(ctx, client.ContainerCreateOptions{
		Name:       name,
		Config:     cfg,
		HostConfig: hc,
	})
	if err != nil {
		if isConflict(err) {
			// Another caller created the same name between our check and
			// our create.
			return "", fmt.Errorf("%w: container %s: %w", hypervisor.ErrAlreadyExists, name, err)
		}
		return "", classify(err, hypervisor.ErrImageNotFound)
	}
	u.Push(func(ctx context.Context) error {
		_, err := api.ContainerRemove(ctx, created.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
		if isNotFound(err) {
			return nil
		}
		return err
	})
	if cs.os {
		if err := d.osInst.checkInit(ctx, api, cs.imageID, created.ID, cs.initCommand()[0], mountTargets(hc)); err != nil {
			return "", err
		}
		if cs.gate {
			if err := d.osInst.checkGateShell(ctx, api, cs.imageID, created.ID); err != nil {
				return "", err
			}
		}
	}
	if err := d.guest.injectAuthorizedKeys(ctx, api, created.ID, cs.spec); err != nil {
		return "", err
	}
	return created.ID, nil
}
