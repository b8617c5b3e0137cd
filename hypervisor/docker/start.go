package docker

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/dockervisor/dockervisor/hypervisor"
)

// postStartStep is one step that every start of an instance runs, after
// the engine has started the instance's process (in new namespaces). The
// Driver's postStart list holds them in the order they run; whatever
// every (re)start must redo belongs there, never in a single transition.
type postStartStep struct {
	name string
	run  func(ctx context.Context, s startedInstance) error
}

// startedInstance is what a post-start step works on: an instance whose
// process the engine has just started.
type startedInstance struct {
	ID          string
	ContainerID string
	PID         int            // the new process, in its new namespaces
	StartedAt   time.Time      // on the engine's clock
	Record      instanceRecord // the durable state, as recorded for the start
	OS          bool           // an OS instance (see osinstance.go)
}

// recordStart bounds the last stop's intent by this start, on the engine's
// clock, so that a later crash is reported as one.
func (d *Driver) recordStart(_ context.Context, s startedInstance) error {
	d.intents.started(s.ContainerID, s.StartedAt)
	return nil
}

// startInstance is the one start path: Spawn, PowerOn, both reboots and
// Restore start an instance only through it. It records want (the record
// the instance has once it runs, PoweredOff cleared), starts the container
// without passing a host config (so the limits set at create hold after
// every start), inspects it and runs the post-start steps in order. It
// returns the container as inspected after the start.
//
// A failure at any point leaves the instance stopped, and the driver's
// view and the engine's agreeing: if the container runs, it is killed
// again and the record from before the call is written back, marked as
// stopped by the driver (so a failed Restore leaves the instance
// soft-deleted, a failed PowerOn or reboot leaves it shut down); if it
// does not run, the record from before the call is written back as it
// was. Only if the container cannot be stopped does the record say it runs,
// as the engine then does. The error names the step that failed.
func (d *Driver) startInstance(ctx context.Context, t *target, want instanceRecord) (c container.InspectResponse, err error) {
	prev := t.rec
	want.PoweredOff = false
	want.Spawning = false
	want.Intent = intentRunning
	if !t.saved || !reflect.DeepEqual(prev, want) {
		if err := d.state.save(t.id, want); err != nil {
			return c, err
		}
	}
	t.rec = want
	defer func() {
		if err != nil {
			err = errors.Join(err, d.settleFailedStart(ctx, t, prev))
		}
	}()

	d.step(StepStart)
	if _, err := t.api.ContainerStart(ctx, t.cid, client.ContainerStartOptions{}); err != nil {
		return c, fmt.Errorf("start: %w", classify(err, hypervisor.ErrNotFound))
	}
	res, err := t.api.ContainerInspect(ctx, t.cid, client.ContainerInspectOptions{})
	if err != nil {
		return c, fmt.Errorf("inspect after start: %w", classify(err, hypervisor.ErrNotFound))
	}
	c = res.Container

	d.step(StepAttachVIFs)
	s := startedInstance{ID: t.id, ContainerID: t.cid, StartedAt: parseTime(c.State.StartedAt), Record: want, OS: d.isOS(c)}
	if c.State != nil {
		s.PID = c.State.Pid
	}
	for _, step := range d.postStart {
		if err := step.run(ctx, s); err != nil {
			return c, fmt.Errorf("post-start step %s: %w", step.name, err)
		}
	}
	d.ops.started(t.cid, s.StartedAt)
	return c, nil
}

// settleFailedStart makes the record agree with the engine after a failed
// start; see startInstance. It runs with a bounded context that ctx's
// cancellation does not end.
func (d *Driver) settleFailedStart(ctx context.Context, t *target, prev instanceRecord) error {
	ctx, cancel := d.cleanupContext(ctx)
	defer cancel()
	res, err := t.api.ContainerInspect(ctx, t.cid, client.ContainerInspectOptions{})
	if isNotFound(err) {
		return nil // nothing left to disagree about
	}
	if err != nil {
		return fmt.Errorf("inspect after a failed start: %w", classify(err, hypervisor.ErrNotFound))
	}
	st := res.Container.State
	if st == nil || !hasProcess(st.Status) {
		return d.state.save(t.id, prev)
	}
	stopped := prev
	stopped.PoweredOff = true
	if err := d.state.save(t.id, stopped); err != nil {
		return err
	}
	d.intents.record(t.cid)
	if err := d.stopProcess(ctx, t.api, t.cid, st.Status == container.StatePaused, stopRequest{Kill: true}); err != nil {
		return errors.Join(fmt.Errorf("stop after a failed start: %w", err), d.state.save(t.id, t.rec))
	}
	return nil
}

// hasProcess reports whether a container in status has a running or
// frozen process.
func hasProcess(status container.ContainerState) bool {
	switch status {
	case container.StateRunning, container.StatePaused, container.StateRestarting:
		return true
	}
	return false
}
