package docker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
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
	CgroupGate  bool           // the init waits for the cgroup gate (osinstance.go)
}

// recordStart bounds the last stop's intent by this start, on the engine's
// clock, so that a later crash is reported as one, and notes the started
// process, so that its OOM kill is known even when the engine misses it.
func (d *lifecycleRoom) recordStart(_ context.Context, s startedInstance) error {
	d.intents.started(s.ContainerID, s.StartedAt)
	d.ooms.started(s.ContainerID, s.PID, s.StartedAt)
	return nil
}

// startInstance is the one start path: Spawn, PowerOn, both reboots and
// Restore start an instance only through it. It records want (the record
// the instance has once it runs, PoweredOff cleared; with the caller's
// intent journal, see pending.go), starts the container
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
func (d *lifecycleRoom) startInstance(ctx context.Context, t *target, want instanceRecord) (c container.InspectResponse, err error) {
	prev := t.rec
	want.PoweredOff = false
	want.Intent = intentRunning
	if !t.saved || t.written != t.pending || !reflect.DeepEqual(prev, want) {
		if err := d.records.save(t, want); err != nil {
			return c, err
		}
	}
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
	s := startedInstance{ID: t.id, ContainerID: t.cid, StartedAt: parseTime(c.State.StartedAt), Record: want, OS: d.osInst.isOS(c)}
	if c.State != nil {
		s.PID = c.State.Pid
	}
	if c.Config != nil {
		spec, _ := d.specFromLabels(c.Config.Labels)
		s.CgroupGate = spec.CgroupGate
	}
	for _, step := range d.postStart {
		if err := step.run(ctx, s); err != nil {
			return c, d.describeStartFailure(ctx, t, fmt.Errorf("post-start step %s: %w", step.name, err))
		}
	}
	d.ops.started(t.cid, s.StartedAt)
	return c, nil
}

// startFailureConsoleLines is how much of the console a start failure
// quotes when the instance's process has exited.
const startFailureConsoleLines = 20

// describeStartFailure adds to err, the failure of a post-start step,
// what happened to the instance when its process is no longer running:
// its exit code and the last lines of its console, where an init says
// why it gave up. A step that fails because the process has gone (a
// namespace that no longer exists) names neither.
func (d *lifecycleRoom) describeStartFailure(ctx context.Context, t *target, err error) error {
	ctx, cancel := d.cleanupContext(ctx)
	defer cancel()
	res, ierr := t.api.ContainerInspect(ctx, t.cid, client.ContainerInspectOptions{})
	if ierr != nil || res.Container.State == nil || hasProcess(res.Container.State.Status) {
		return err
	}
	st := res.Container.State
	con, cerr := d.guest.readConsole(ctx, t.api, res.Container, client.ContainerLogsOptions{
		ShowStdout: true, ShowStderr: true, Tail: strconv.Itoa(startFailureConsoleLines),
	}, hypervisor.DefaultConsoleMaxBytes)
	var tail string
	switch {
	case cerr != nil:
		tail = "console unreadable: " + cerr.Error()
	case len(bytes.TrimSpace(con)) == 0:
		tail = "console empty"
	default:
		tail = "last console lines:\n" + strings.TrimRight(string(con), "\n")
	}
	return fmt.Errorf("%w; the instance's process exited during its start (exit code %d%s); %s",
		err, st.ExitCode, oomNote(st), tail)
}

// oomNote says that the kernel's OOM killer ended the process, if so.
func oomNote(st *container.State) string {
	if st.OOMKilled {
		return ", killed by the kernel for lack of memory"
	}
	return ""
}

// settleFailedStart makes the record agree with the engine after a failed
// start; see startInstance. It runs with a bounded context that ctx's
// cancellation does not end.
func (d *lifecycleRoom) settleFailedStart(ctx context.Context, t *target, prev instanceRecord) error {
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
		return d.records.save(t, prev)
	}
	running := t.rec
	stopped := prev
	stopped.PoweredOff = true
	if err := d.records.save(t, stopped); err != nil {
		return err
	}
	d.intents.record(t.cid)
	if err := d.stopProcess(ctx, t.api, t.cid, st.Status == container.StatePaused, stopRequest{Kill: true}); err != nil {
		return errors.Join(fmt.Errorf("stop after a failed start: %w", err), d.records.save(t, running))
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
