package docker

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/dockervisor/dockervisor/hypervisor"
)

// stopRequest says how to stop an instance's process.
type stopRequest struct {
	// Timeout is how long the graceful signal has before the kill, as in
	// hypervisor.StopOptions: zero is the driver's default, negative kills
	// at once.
	Timeout time.Duration
	// Kill skips the graceful signal.
	Kill bool
}

// stopInstance is the one stop path: PowerOff, SoftDelete and both reboots
// stop a running or paused instance only through it. It records want (the
// record the instance has once stopped, PoweredOff set) before the stop,
// so that the exit reads as a shutdown and not a crash, notes the stop
// intent for the event stream, and stops the process.
//
// If the stop fails, the engine is asked again with a bounded context: if
// the process still runs, the record from before the call is written back;
// if it stopped after all, want stays.
func (d *lifecycleRoom) stopInstance(ctx context.Context, t *target, want instanceRecord, req stopRequest) error {
	prev := t.rec
	want.PoweredOff = true
	want.Intent = intentStopped
	if err := d.records.save(t, want); err != nil {
		return err
	}
	d.intents.record(t.cid)
	began := time.Now()
	err := d.stopProcess(ctx, t.api, t.cid, t.cur == hypervisor.StatePaused, req)
	if err == nil {
		return d.osInst.noteShutdown(ctx, t, req, began)
	}
	return errors.Join(err, d.settleFailedStop(ctx, t, prev))
}

func (d *lifecycleRoom) settleFailedStop(ctx context.Context, t *target, prev instanceRecord) error {
	ctx, cancel := d.cleanupContext(ctx)
	defer cancel()
	res, err := t.api.ContainerInspect(ctx, t.cid, client.ContainerInspectOptions{})
	if isNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("inspect after a failed stop: %w", classify(err, hypervisor.ErrNotFound))
	}
	if res.Container.State != nil && hasProcess(res.Container.State.Status) {
		return d.records.save(t, prev)
	}
	return nil
}

// stopProcess stops container cid's process: thawed first if paused (a
// frozen process cannot act on a signal, and the engine refuses to kill
// it), then the graceful signal with req.Timeout, or SIGKILL at once.
func (d *lifecycleRoom) stopProcess(ctx context.Context, api APIClient, cid string, paused bool, req stopRequest) error {
	if paused {
		// A conflict: it runs already (pauseecho.go).
		if err := d.pauseRequest(ctx, api, cid, false); err != nil && !isConflict(err) {
			return classify(err, hypervisor.ErrNotFound)
		}
	}
	timeout := req.Timeout
	if timeout == 0 {
		timeout = d.opts.stopTimeout
	}
	if !req.Kill && timeout > 0 {
		secs := int(math.Ceil(timeout.Seconds()))
		_, err := api.ContainerStop(ctx, cid, client.ContainerStopOptions{Timeout: &secs})
		return classify(err, hypervisor.ErrNotFound)
	}
	if _, err := api.ContainerKill(ctx, cid, client.ContainerKillOptions{Signal: "KILL"}); err != nil && !isConflict(err) {
		return classify(err, hypervisor.ErrNotFound)
	}
	// Kill returns once the signal is sent; wait for the exit.
	wait := api.ContainerWait(ctx, cid, client.ContainerWaitOptions{Condition: container.WaitConditionNotRunning})
	select {
	case <-wait.Result:
		return nil
	case err := <-wait.Error:
		return classify(err, hypervisor.ErrNotFound)
	case <-ctx.Done():
		return ctx.Err()
	}
}
