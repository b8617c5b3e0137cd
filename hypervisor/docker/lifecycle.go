package docker

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/dockervisor/dockervisor/hypervisor"
	"github.com/dockervisor/dockervisor/internal/enginestats"
	"github.com/dockervisor/dockervisor/internal/undo"
)

// cpuSharesPerVCPU maps a flavor's vCPUs to CPU shares.
const cpuSharesPerVCPU = 1024

// Spawn creates and starts an instance: validate, ensure-image, create,
// plug-vifs, start, attach-vifs. A failure in any step undoes the steps
// before it, so a failed Spawn leaves no container and no state behind. A
// taken ID returns ErrAlreadyExists and leaves the existing instance alone.
func (d *Driver) Spawn(ctx context.Context, spec hypervisor.InstanceSpec) (hypervisor.Instance, error) {
	inst, err := d.spawn(ctx, spec)
	return inst, opErr("spawn", spec.ID, err)
}

func (d *Driver) spawn(ctx context.Context, spec hypervisor.InstanceSpec) (hypervisor.Instance, error) {
	d.step(StepValidate)
	if err := spec.Validate(); err != nil {
		return hypervisor.Instance{}, err
	}
	if err := d.checkUserLabels(spec.Labels); err != nil {
		return hypervisor.Instance{}, err
	}
	api, unlock, err := d.begin(ctx, spec.ID)
	if err != nil {
		return hypervisor.Instance{}, err
	}
	defer unlock()

	if _, err := d.inspect(ctx, api, spec.ID); err == nil {
		return hypervisor.Instance{}, fmt.Errorf("%w: %s", hypervisor.ErrAlreadyExists, spec.ID)
	} else if !isNotFound(err) {
		return hypervisor.Instance{}, err
	}

	var u undo.Stack
	defer func() {
		if rerr := u.Rollback(ctx); rerr != nil {
			d.log.DebugContext(ctx, "spawn rollback failed", "id", spec.ID, "err", rerr)
		}
	}()

	d.step(StepEnsureImage)
	engineImage, err := d.ensureImage(ctx, api, spec.Image)
	if err != nil {
		return hypervisor.Instance{}, err
	}

	d.step(StepCreate)
	cid, err := d.create(ctx, api, spec, engineImage, &u)
	if err != nil {
		return hypervisor.Instance{}, err
	}

	d.step(StepPlugVIFs)
	// No VIF driver yet: instances are created with networking off.

	d.step(StepStart)
	if _, err := api.ContainerStart(ctx, cid, client.ContainerStartOptions{}); err != nil {
		return hypervisor.Instance{}, translate(err, hypervisor.ErrNotFound)
	}

	d.step(StepAttachVIFs)

	resp, err := d.inspect(ctx, api, spec.ID)
	if err != nil {
		return hypervisor.Instance{}, err
	}
	u.Release()
	d.log.DebugContext(ctx, "spawned", "id", spec.ID, "container", cid)
	return d.instance(resp, instanceState{ID: spec.ID}), nil
}

func (d *Driver) step(name string) {
	if d.stepHook != nil {
		d.stepHook(name)
	}
}

// create creates the container and its state file, registering their undo.
func (d *Driver) create(ctx context.Context, api APIClient, spec hypervisor.InstanceSpec, engineImage string, u *undo.Stack) (string, error) {
	vcpus := spec.EffectiveVCPUs()
	labels, err := d.containerLabels(storedSpec{
		Version:      specLabelVersion,
		ID:           spec.ID,
		Name:         spec.Hostname(),
		Image:        spec.Image,
		EngineImage:  engineImage,
		VCPUs:        vcpus,
		HardCPULimit: spec.HardCPULimit,
		MemoryMB:     spec.MemoryMB,
		Labels:       spec.Labels,
		Metadata:     spec.Metadata,
	})
	if err != nil {
		return "", err
	}
	env := make([]string, 0, len(spec.Env))
	for _, k := range slices.Sorted(maps.Keys(spec.Env)) {
		env = append(env, k+"="+spec.Env[k])
	}
	res := container.Resources{CPUShares: int64(vcpus) * cpuSharesPerVCPU}
	if spec.HardCPULimit {
		res.NanoCPUs = int64(vcpus) * 1e9
	}
	if spec.MemoryMB > 0 {
		res.Memory = spec.MemoryMB << 20
		res.MemorySwap = res.Memory // no swap beyond the limit
	}
	name := d.containerName(spec.ID)
	drive, err := d.prepareConfigDrive(spec, u)
	if err != nil {
		return "", err
	}
	cfg := &container.Config{
		Hostname: spec.Hostname(),
		Image:    engineImage,
		Cmd:      spec.Command,
		Env:      env,
		Labels:   labels,
	}
	hc := &container.HostConfig{
		NetworkMode: "none",
		Resources:   res,
	}
	guestConfig(cfg, hc, drive)
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
		return "", translate(err, hypervisor.ErrImageNotFound)
	}
	u.Push(func(ctx context.Context) error {
		_, err := api.ContainerRemove(ctx, created.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
		if isNotFound(err) {
			return nil
		}
		return err
	})
	u.Push(func(context.Context) error { return d.state.remove(spec.ID) })
	if err := d.state.save(instanceState{ID: spec.ID}); err != nil {
		return "", err
	}
	if err := d.injectAuthorizedKeys(ctx, api, created.ID, spec); err != nil {
		return "", err
	}
	return created.ID, nil
}

// inspect returns the container of instance id, or ErrNotFound, also for a
// container with our name that this driver did not label.
func (d *Driver) inspect(ctx context.Context, api APIClient, id string) (container.InspectResponse, error) {
	res, err := api.ContainerInspect(ctx, d.containerName(id), client.ContainerInspectOptions{})
	if err != nil {
		return container.InspectResponse{}, translate(err, hypervisor.ErrNotFound)
	}
	c := res.Container
	if c.Config == nil || c.Config.Labels[d.label(labelInstanceID)] != id {
		return container.InspectResponse{}, fmt.Errorf("%w: %s: %w", hypervisor.ErrNotFound, d.containerName(id), errNotOurs)
	}
	return c, nil
}

// current returns the container, the mutable state and the power state of
// instance id.
func (d *Driver) current(ctx context.Context, api APIClient, id string) (container.InspectResponse, instanceState, hypervisor.State, error) {
	c, err := d.inspect(ctx, api, id)
	if err != nil {
		return c, instanceState{}, hypervisor.StateUnknown, err
	}
	st, err := d.state.load(id)
	if err != nil {
		return c, st, hypervisor.StateUnknown, err
	}
	return c, st, powerState(c.State.Status, c.State.ExitCode, c.State.OOMKilled, st), nil
}

// powerState maps the engine's container state and our mutable state to a
// hypervisor.State.
func powerState(status container.ContainerState, exitCode int, oomKilled bool, st instanceState) hypervisor.State {
	if st.SoftDeleted {
		return hypervisor.StateSoftDeleted
	}
	switch status {
	case container.StateRunning, container.StateRestarting:
		return hypervisor.StateRunning
	case container.StatePaused:
		return hypervisor.StatePaused
	case container.StateCreated:
		return hypervisor.StateCreated
	case container.StateExited, container.StateDead:
		if st.PoweredOff || (exitCode == 0 && !oomKilled && status == container.StateExited) {
			return hypervisor.StateShutdown
		}
		return hypervisor.StateCrashed
	case container.StateRemoving:
		return hypervisor.StateShutdown
	}
	return hypervisor.StateUnknown
}

// instance builds a hypervisor.Instance from an inspected container.
func (d *Driver) instance(c container.InspectResponse, st instanceState) hypervisor.Instance {
	spec, _ := d.specFromLabels(c.Config.Labels)
	inst := d.instanceFromSpec(spec)
	inst.BackendID = c.ID
	inst.State = powerState(c.State.Status, c.State.ExitCode, c.State.OOMKilled, st)
	inst.ExitCode = c.State.ExitCode
	if inst.State == hypervisor.StateRunning || inst.State == hypervisor.StatePaused {
		inst.PID = c.State.Pid
		inst.ExitCode = 0
	}
	inst.CreatedAt = parseTime(c.Created)
	inst.StartedAt = parseTime(c.State.StartedAt)
	if st.MetadataSet {
		inst.Metadata = st.Metadata
	}
	return inst
}

func (d *Driver) instanceFromSpec(s storedSpec) hypervisor.Instance {
	return hypervisor.Instance{
		ID:       s.ID,
		Name:     s.Name,
		Image:    s.Image,
		VCPUs:    s.VCPUs,
		MemoryMB: s.MemoryMB,
		Labels:   s.Labels,
		Metadata: s.Metadata,
	}
}

func parseTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil || t.Year() <= 1 {
		return time.Time{}
	}
	return t
}

// Destroy removes the instance's container and state. A missing instance
// is not an error.
func (d *Driver) Destroy(ctx context.Context, id string) error {
	return opErr("destroy", id, d.destroy(ctx, id))
}

func (d *Driver) destroy(ctx context.Context, id string) error {
	api, unlock, err := d.begin(ctx, id)
	if err != nil {
		return err
	}
	defer unlock()
	c, err := d.inspect(ctx, api, id)
	switch {
	case isNotFound(err):
		return d.state.remove(id)
	case err != nil:
		return err
	}
	d.intents.record(c.ID) // the exit that a forced remove causes is no crash
	if _, err := api.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true}); err != nil && !isNotFound(err) {
		return translate(err, hypervisor.ErrNotFound)
	}
	d.log.DebugContext(ctx, "destroyed", "id", id)
	if spec, _ := d.specFromLabels(c.Config.Labels); d.opts.images != nil && spec.EngineImage != spec.Image {
		// A store image whose newer version replaced it goes with its last
		// instance.
		d.removeUntaggedImage(ctx, api, c.Image)
	}
	return d.state.remove(id)
}

// PowerOff stops the instance gracefully and kills it after the timeout. A
// paused instance is thawed first. Nil if it is not running.
func (d *Driver) PowerOff(ctx context.Context, id string, opts hypervisor.StopOptions) error {
	return opErr("power-off", id, d.withState(ctx, id, func(api APIClient, c container.InspectResponse, st instanceState, cur hypervisor.State) error {
		if cur == hypervisor.StateShutdown || cur == hypervisor.StateCrashed || cur == hypervisor.StateCreated {
			return nil
		}
		if err := hypervisor.CheckState("power-off", id, cur, hypervisor.StateRunning, hypervisor.StatePaused); err != nil {
			return err
		}
		return d.stop(ctx, api, c, st, cur, opts.Timeout, false)
	}))
}

// PowerOn starts a shut-down or crashed instance. Nil if it runs.
func (d *Driver) PowerOn(ctx context.Context, id string) error {
	return opErr("power-on", id, d.withState(ctx, id, func(api APIClient, c container.InspectResponse, st instanceState, cur hypervisor.State) error {
		if cur == hypervisor.StateRunning {
			return nil
		}
		if err := hypervisor.CheckState("power-on", id, cur, hypervisor.StateShutdown, hypervisor.StateCrashed, hypervisor.StateCreated); err != nil {
			return err
		}
		return d.start(ctx, api, c, st)
	}))
}

// Pause freezes the instance's processes. Nil if it is paused.
func (d *Driver) Pause(ctx context.Context, id string) error {
	return opErr("pause", id, d.withState(ctx, id, func(api APIClient, c container.InspectResponse, _ instanceState, cur hypervisor.State) error {
		if cur == hypervisor.StatePaused {
			return nil
		}
		if err := hypervisor.CheckState("pause", id, cur, hypervisor.StateRunning); err != nil {
			return err
		}
		_, err := api.ContainerPause(ctx, c.ID, client.ContainerPauseOptions{})
		return translate(err, hypervisor.ErrNotFound)
	}))
}

// Unpause thaws a paused instance. Nil if it runs.
func (d *Driver) Unpause(ctx context.Context, id string) error {
	return opErr("unpause", id, d.withState(ctx, id, func(api APIClient, c container.InspectResponse, _ instanceState, cur hypervisor.State) error {
		if cur == hypervisor.StateRunning {
			return nil
		}
		if err := hypervisor.CheckState("unpause", id, cur, hypervisor.StatePaused); err != nil {
			return err
		}
		_, err := api.ContainerUnpause(ctx, c.ID, client.ContainerUnpauseOptions{})
		return translate(err, hypervisor.ErrNotFound)
	}))
}

// Reboot restarts the instance. A soft reboot stops a running instance
// gracefully (killing it after opts.Timeout) and starts it; a hard reboot
// kills it at once and starts it, and also starts a stopped instance.
func (d *Driver) Reboot(ctx context.Context, id string, opts hypervisor.RebootOptions) error {
	return opErr("reboot", id, d.withState(ctx, id, func(api APIClient, c container.InspectResponse, st instanceState, cur hypervisor.State) error {
		var err error
		if opts.Hard {
			err = hypervisor.CheckState("reboot", id, cur, hypervisor.StateRunning, hypervisor.StatePaused,
				hypervisor.StateShutdown, hypervisor.StateCrashed, hypervisor.StateCreated)
		} else {
			err = hypervisor.CheckState("reboot", id, cur, hypervisor.StateRunning)
		}
		if err != nil {
			return err
		}
		if cur == hypervisor.StateRunning || cur == hypervisor.StatePaused {
			if err := d.stop(ctx, api, c, st, cur, opts.Timeout, opts.Hard); err != nil {
				return err
			}
			st.PoweredOff = true
		}
		return d.start(ctx, api, c, st)
	}))
}

// SoftDelete stops the instance and marks it soft-deleted. Nil if it is
// soft-deleted already.
func (d *Driver) SoftDelete(ctx context.Context, id string) error {
	return opErr("soft-delete", id, d.withState(ctx, id, func(api APIClient, c container.InspectResponse, st instanceState, cur hypervisor.State) error {
		if cur == hypervisor.StateSoftDeleted {
			return nil
		}
		if err := hypervisor.CheckState("soft-delete", id, cur, hypervisor.StateRunning, hypervisor.StatePaused,
			hypervisor.StateShutdown, hypervisor.StateCrashed, hypervisor.StateCreated); err != nil {
			return err
		}
		if cur == hypervisor.StateRunning || cur == hypervisor.StatePaused {
			if err := d.stop(ctx, api, c, st, cur, 0, false); err != nil {
				return err
			}
		}
		st.PoweredOff, st.SoftDeleted = true, true
		return d.state.save(st)
	}))
}

// Restore starts a soft-deleted instance again and clears the mark.
func (d *Driver) Restore(ctx context.Context, id string) error {
	return opErr("restore", id, d.withState(ctx, id, func(api APIClient, c container.InspectResponse, st instanceState, cur hypervisor.State) error {
		if err := hypervisor.CheckState("restore", id, cur, hypervisor.StateSoftDeleted); err != nil {
			return err
		}
		prev := st
		st.SoftDeleted = false
		if err := d.start(ctx, api, c, st); err != nil {
			return errors.Join(err, d.state.save(prev))
		}
		return nil
	}))
}

// withState runs fn under the instance's lock with its current state.
func (d *Driver) withState(ctx context.Context, id string, fn func(APIClient, container.InspectResponse, instanceState, hypervisor.State) error) error {
	api, unlock, err := d.begin(ctx, id)
	if err != nil {
		return err
	}
	defer unlock()
	c, st, cur, err := d.current(ctx, api, id)
	if err != nil {
		return err
	}
	return fn(api, c, st, cur)
}

// stop stops a running or paused container, recording first that the
// driver stopped it. kill skips the graceful signal.
func (d *Driver) stop(ctx context.Context, api APIClient, c container.InspectResponse, st instanceState, cur hypervisor.State, timeout time.Duration, kill bool) error {
	prev := st
	st.PoweredOff = true
	if err := d.state.save(st); err != nil {
		return err
	}
	d.intents.record(c.ID)
	err := d.stopContainer(ctx, api, c.ID, cur, timeout, kill)
	if err != nil {
		return errors.Join(err, d.state.save(prev))
	}
	return nil
}

func (d *Driver) stopContainer(ctx context.Context, api APIClient, cid string, cur hypervisor.State, timeout time.Duration, kill bool) error {
	if cur == hypervisor.StatePaused {
		// A frozen process cannot act on a graceful signal.
		if _, err := api.ContainerUnpause(ctx, cid, client.ContainerUnpauseOptions{}); err != nil {
			return translate(err, hypervisor.ErrNotFound)
		}
	}
	if timeout == 0 {
		timeout = d.opts.stopTimeout
	}
	if kill || timeout < 0 {
		if _, err := api.ContainerKill(ctx, cid, client.ContainerKillOptions{Signal: "KILL"}); err != nil && !isConflict(err) {
			return translate(err, hypervisor.ErrNotFound)
		}
		// Kill returns once the signal is sent; wait for the exit.
		wait := api.ContainerWait(ctx, cid, client.ContainerWaitOptions{Condition: container.WaitConditionNotRunning})
		select {
		case <-wait.Result:
			return nil
		case err := <-wait.Error:
			return translate(err, hypervisor.ErrNotFound)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	secs := int(math.Ceil(timeout.Seconds()))
	_, err := api.ContainerStop(ctx, cid, client.ContainerStopOptions{Timeout: &secs})
	return translate(err, hypervisor.ErrNotFound)
}

// start starts the container and records that it is meant to run. It never
// passes a host config: the limits set at create hold after every start.
func (d *Driver) start(ctx context.Context, api APIClient, c container.InspectResponse, st instanceState) error {
	prev := st
	st.PoweredOff = false
	if err := d.state.save(st); err != nil {
		return err
	}
	if _, err := api.ContainerStart(ctx, c.ID, client.ContainerStartOptions{}); err != nil {
		return errors.Join(translate(err, hypervisor.ErrNotFound), d.state.save(prev))
	}
	// Bound the last stop's intent by this start, on the engine's clock,
	// so that a later crash is reported as one.
	res, err := api.ContainerInspect(ctx, c.ID, client.ContainerInspectOptions{})
	if err != nil {
		return translate(err, hypervisor.ErrNotFound)
	}
	d.intents.started(c.ID, parseTime(res.Container.State.StartedAt))
	return nil
}

// Info returns the instance with its power state, memory use and limit,
// and CPU time.
func (d *Driver) Info(ctx context.Context, id string) (hypervisor.InstanceInfo, error) {
	info, err := d.info(ctx, id)
	return info, opErr("info", id, err)
}

func (d *Driver) info(ctx context.Context, id string) (hypervisor.InstanceInfo, error) {
	if err := hypervisor.ValidateID(id); err != nil {
		return hypervisor.InstanceInfo{}, err
	}
	api, err := d.engine(ctx)
	if err != nil {
		return hypervisor.InstanceInfo{}, err
	}
	c, st, _, err := d.current(ctx, api, id)
	if err != nil {
		return hypervisor.InstanceInfo{}, err
	}
	info := hypervisor.InstanceInfo{Instance: d.instance(c, st)}
	if c.HostConfig != nil && c.HostConfig.Memory > 0 {
		info.MaxMemoryBytes = uint64(c.HostConfig.Memory)
	} else {
		if f, err := d.facts(ctx, api); err == nil {
			info.MaxMemoryBytes = f.memTotal
		}
	}
	if info.State == hypervisor.StateRunning || info.State == hypervisor.StatePaused {
		s, err := enginestats.Fetch(ctx, api, c.ID, enginestats.Options{})
		if err != nil {
			if isNotFound(err) {
				return hypervisor.InstanceInfo{}, err
			}
			// The container may have stopped between inspect and stats.
			d.log.DebugContext(ctx, "stats failed", "id", id, "err", err)
		} else {
			info.CPUTime = s.CPUTime
			info.MemoryBytes = s.MemoryBytes
		}
	}
	return info, nil
}

// List returns this driver's instances (by label), never other containers
// on the engine. PID and StartedAt are left zero: Info reports them.
func (d *Driver) List(ctx context.Context, opts hypervisor.ListOptions) ([]hypervisor.Instance, error) {
	out, err := d.list(ctx, opts)
	return out, opErr("list", "", err)
}

func (d *Driver) list(ctx context.Context, opts hypervisor.ListOptions) ([]hypervisor.Instance, error) {
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
		return nil, translate(err, hypervisor.ErrNotFound)
	}
	out := make([]hypervisor.Instance, 0, len(res.Items))
	for _, c := range res.Items {
		spec, ok := d.specFromLabels(c.Labels)
		if !ok || !slices.Contains(c.Names, "/"+d.containerName(spec.ID)) {
			continue
		}
		st, err := d.state.load(spec.ID)
		if err != nil {
			return nil, err
		}
		inst := d.instanceFromSpec(spec)
		if st.MetadataSet {
			inst.Metadata = st.Metadata
		}
		inst.BackendID = c.ID
		inst.CreatedAt = time.Unix(c.Created, 0)
		exitCode, oom := 0, false
		if (c.State == container.StateExited || c.State == container.StateDead) && !st.PoweredOff && !st.SoftDeleted {
			// Only the exit code tells a crash from a shutdown.
			ci, err := api.ContainerInspect(ctx, c.ID, client.ContainerInspectOptions{})
			if isNotFound(err) {
				continue
			}
			if err != nil {
				return nil, translate(err, hypervisor.ErrNotFound)
			}
			exitCode, oom = ci.Container.State.ExitCode, ci.Container.State.OOMKilled
		}
		inst.State = powerState(c.State, exitCode, oom, st)
		inst.ExitCode = exitCode
		if len(opts.States) > 0 && !slices.Contains(opts.States, inst.State) {
			continue
		}
		out = append(out, inst)
	}
	slices.SortFunc(out, func(a, b hypervisor.Instance) int {
		if a.ID < b.ID {
			return -1
		}
		if a.ID > b.ID {
			return 1
		}
		return 0
	})
	return out, nil
}
