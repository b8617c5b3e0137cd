package docker

import (
	"context"
	"errors"
	"time"

	"github.com/dockervisor/dockervisor/hypervisor"
)

// lifecycleRoom is the Driver's room of the lifecycle: spawn, power, stop,
// rebuild, resize and inspect.
type lifecycleRoom struct{ *core }

// transition runs fn for instance id under the instance's lock, after
// checking op's row of the state table (package hypervisor): a no-op
// state returns nil without calling fn, a state op is not valid in
// returns the *hypervisor.StateError.
func (d *lifecycleRoom) transition(ctx context.Context, op hypervisor.Operation, id string, fn func(t *target) error) error {
	t, unlock, err := d.lockCurrent(ctx, id)
	if err != nil {
		return opErr(op.String(), id, err)
	}
	defer unlock()
	act, err := op.Check(id, t.cur)
	if !act || err != nil {
		return opErr(op.String(), id, err)
	}
	t.op = op.String()
	done := d.ops.begin(t.cid, t.op)
	defer done()
	err = fn(t)
	// The operation is over, done or rolled back: its journal, if it
	// opened one, goes.
	if err = errors.Join(err, d.records.endOp(t)); err != nil {
		return opErr(op.String(), id, err)
	}
	if typ, ok := opEvents[op]; ok {
		d.events.publish(hypervisor.Event{Type: typ, ID: id, Reason: hypervisor.ReasonRequested, Operation: t.op})
	}
	return nil
}

// PowerOff stops the instance gracefully and kills it after the timeout. A
// paused instance is thawed first. Nil if it is not running.
func (d *lifecycleRoom) PowerOff(ctx context.Context, id string, opts hypervisor.StopOptions) error {
	return d.transition(ctx, hypervisor.OpPowerOff, id, func(t *target) error {
		d.records.beginOp(t, pendPowerOff)
		return d.stopInstance(ctx, t, t.rec, stopRequest{Timeout: opts.Timeout})
	})
}

// PowerOn starts a shut-down or crashed instance. Nil if it runs.
func (d *lifecycleRoom) PowerOn(ctx context.Context, id string) error {
	return d.transition(ctx, hypervisor.OpPowerOn, id, func(t *target) error {
		d.records.beginOp(t, pendPowerOn)
		_, err := d.startInstance(ctx, t, t.rec)
		return err
	})
}

// Pause freezes the instance's processes. Nil if it is paused.
func (d *lifecycleRoom) Pause(ctx context.Context, id string) error {
	return d.transition(ctx, hypervisor.OpPause, id, func(t *target) error {
		return classify(d.pauseRequest(ctx, t.api, t.cid, true), hypervisor.ErrNotFound)
	})
}

// Unpause thaws a paused instance. Nil if it runs.
func (d *lifecycleRoom) Unpause(ctx context.Context, id string) error {
	return d.transition(ctx, hypervisor.OpUnpause, id, func(t *target) error {
		return classify(d.pauseRequest(ctx, t.api, t.cid, false), hypervisor.ErrNotFound)
	})
}

// Reboot restarts the instance. A soft reboot stops a running instance
// gracefully (killing it after opts.Timeout) and starts it; a hard reboot
// kills it at once and starts it, and also starts a stopped instance. A
// reboot whose start fails leaves the instance shut down.
func (d *lifecycleRoom) Reboot(ctx context.Context, id string, opts hypervisor.RebootOptions) error {
	op := hypervisor.OpRebootSoft
	if opts.Hard {
		op = hypervisor.OpRebootHard
	}
	return d.transition(ctx, op, id, func(t *target) error {
		d.records.beginOp(t, pendReboot)
		if t.cur == hypervisor.StateRunning || t.cur == hypervisor.StatePaused {
			if err := d.stopInstance(ctx, t, t.rec, stopRequest{Timeout: opts.Timeout, Kill: opts.Hard}); err != nil {
				return err
			}
		}
		_, err := d.startInstance(ctx, t, t.rec)
		return err
	})
}

// SoftDelete stops the instance and marks it soft-deleted. Nil if it is
// soft-deleted already.
func (d *lifecycleRoom) SoftDelete(ctx context.Context, id string) error {
	return d.transition(ctx, hypervisor.OpSoftDelete, id, func(t *target) error {
		want := t.rec
		want.SoftDeleted = true
		if t.cur == hypervisor.StateRunning || t.cur == hypervisor.StatePaused {
			// The record says soft-deleted before the stop: the journal
			// lets a new Driver finish the stop if this process dies.
			d.records.beginOp(t, pendSoftDelete)
			return d.stopInstance(ctx, t, want, stopRequest{})
		}
		want.PoweredOff = true
		want.Intent = intentStopped
		return d.records.save(t, want)
	})
}

// Restore starts a soft-deleted instance again and clears the mark. A
// Restore whose start fails leaves the instance soft-deleted and stopped.
func (d *lifecycleRoom) Restore(ctx context.Context, id string) error {
	return d.transition(ctx, hypervisor.OpRestore, id, func(t *target) error {
		d.records.beginOp(t, pendRestore)
		want := t.rec
		want.SoftDeleted = false
		_, err := d.startInstance(ctx, t, want)
		return err
	})
}

// Destroy removes the instance's container, unplugs its VIFs (telling the
// port observer first) and removes its state. A missing instance is not an
// error. A VIF whose unplug fails stays recorded, and Destroy returns the
// error: calling Destroy again (the container is gone by then) unplugs it.
// What an operation interrupted by a crash left (see recover.go) goes
// too: a rebuild's set-aside container, a snapshot's committed and store
// images. A container whose removal is under way already (that of a
// Destroy whose process died) is waited for, within ctx.
func (d *lifecycleRoom) Destroy(ctx context.Context, id string) error {
	return opErr("destroy", id, d.destroy(ctx, id))
}

func (d *lifecycleRoom) destroy(ctx context.Context, id string) error {
	api, unlock, err := d.lockInstance(ctx, id)
	if err != nil {
		return err
	}
	defer unlock()
	return d.destroyLocked(ctx, api, id, "destroy")
}

// destroyLocked is Destroy under the instance's lock; op names the
// operation for the event stream.
func (d *lifecycleRoom) destroyLocked(ctx context.Context, api APIClient, id, op string) error {
	if err := d.discardInterrupted(ctx, api, id); err != nil {
		return err
	}
	c, err := d.inspect(ctx, api, id)
	if isNotFound(err) {
		// A spawn whose process died as it asked for the container: the
		// engine may still be creating it.
		if rec, ok, lerr := d.state.instances.Load(id); lerr == nil && ok {
			if lc, came, aerr := d.records.awaitSpawnCreate(ctx, api, id, rec); aerr != nil {
				return aerr
			} else if came {
				c, err = lc, nil
			}
		}
	}
	switch {
	case isNotFound(err):
		// Not this driver's (or gone): only this driver's own record of
		// the ID, if one was left behind, goes, with the VIFs it still
		// names (a Destroy whose unplug failed).
		return d.finishDestroy(ctx, id, false)
	case err != nil:
		return err
	}
	d.intents.record(c.ID) // the exit that a forced remove causes is no crash
	done := d.ops.begin(c.ID, op)
	defer done()
	// The journal says the removal is asked for before it is: the engine
	// goes on removing a container whose client died, and shows it
	// running until its process is dead, so a new Driver could not tell a
	// removal under way from an instance at rest (recover.go finishes it).
	rec, err := d.state.load(id)
	if err != nil {
		return err
	}
	rec.Pending = &pendingOp{Op: pendDestroy, Owner: d.owner, Since: time.Now(), Container: c.ID, Sent: "remove", SentAt: time.Now()}
	if err := d.state.save(id, rec); err != nil {
		return err
	}
	if err := d.records.removeContainer(ctx, api, c.ID); err != nil {
		return err
	}
	d.log.DebugContext(ctx, "destroyed", "id", id)
	if spec, _ := d.specFromLabels(c.Config.Labels); d.opts.images != nil && spec.EngineImage != spec.Image {
		// A store image whose newer version replaced it goes with its last
		// instance.
		d.images.removeUntaggedImage(ctx, api, c.Image)
	}
	return d.finishDestroy(ctx, id, true)
}

// discardInterrupted removes, before a Destroy, what an operation
// interrupted by a crash left of instance id beside its container: a
// rebuild's set-aside container (and the new container, which the
// removal of the instance's container takes), an interrupted snapshot's
// committed and store images, and committed images of the instance that
// no snapshot uses. An operation of a live owner is left to it.
func (d *lifecycleRoom) discardInterrupted(ctx context.Context, api APIClient, id string) error {
	rec, ok, err := d.state.instances.Load(id)
	if err != nil {
		return err
	}
	if p := rec.Pending; ok && p != nil && p.Op == pendSnapshot && d.records.ownerGone(p.Owner) {
		if err := d.records.discardSnapshot(ctx, api, p); err != nil {
			return err
		}
	}
	if err := d.records.removeAside(ctx, api, id); err != nil {
		return err
	}
	_, err = d.records.removeCommitted(ctx, api, id)
	return err
}

// finishDestroy unplugs the VIFs that the record of the destroyed instance
// id names and removes the record and the instance's network files. If a VIF
// cannot be unplugged, the record stays with the VIFs left.
func (d *lifecycleRoom) finishDestroy(ctx context.Context, id string, owned bool) error {
	rec, err := d.state.load(id)
	if err != nil {
		return err
	}
	if left, err := d.vifs.unplugRecorded(ctx, id, rec); err != nil {
		return errors.Join(err, d.state.save(id, left))
	}
	// Withdrawn while the record stays, so that a retry withdraws it.
	if err := d.guest.unregisterMetadata(ctx, id); err != nil {
		return err
	}
	return errors.Join(d.vifs.removeNetFiles(id), d.state.remove(id, owned))
}
