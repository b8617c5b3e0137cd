package docker

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/client"

	"github.com/dockervisor/dockervisor/hypervisor"
	"github.com/dockervisor/dockervisor/internal/undo"
)

// recordRoom is the Driver's room of records and intents: recovery,
// reconcile, resume and sweep.
type recordRoom struct {
	*core
	guest  bootDataWriter
	images snapshotter
	osInst osKind
}

// Recovery after a crash. An operation whose process died leaves its
// intent journal (pending.go) in the instance's record. The next call
// that takes the instance's turn in a new Driver (Reconcile and Resume
// included) finds it, sees that its owner is gone, and brings the
// instance to the state before the operation or after it, never a third:
//
//	power-off, soft delete,    finished: the process is stopped (gracefully),
//	Reconcile's stop           the record is the one the operation wrote
//	power-on, restore,         finished: a process the operation started is
//	reboot, Resume's start     killed (its post-start steps may not have
//	                           run), and the instance is started again
//	                           through the one start path
//	rebuild                    undone: a new container goes, the old one gets
//	                           its name back, the record from before is
//	                           written, and the instance runs again if it
//	                           ran (a rebuild whose new container was
//	                           complete had cleared its journal: only the
//	                           set-aside container was left, and Reconcile
//	                           and Destroy remove it)
//	snapshot                   undone: the instance is unpaused if the
//	                           snapshot paused it (a user's pause stays),
//	                           the committed image and the store image go
//	resize                     finished if the engine has the new limits,
//	                           undone (old limits, old record) otherwise
//	VIF plug, attach           undone: the new VIFs are detached and
//	                           unplugged, replaced ones plugged back
//	VIF unplug, detach         finished
//	metadata update            finished: the config drive is rebuilt
//	destroy                    finished, once the container's removal was
//	                           asked for (the engine goes on with it, and
//	                           shows the container running meanwhile);
//	                           before that, the instance is as before
//
// A spawn keeps its own mark (the record's Spawning) and Reconcile's
// half-spawn policy applies to it. Destroy removes the container first
// and the record last, so a crash after the removal leaves a record
// without a container, which Reconcile's remove policy (or another
// Destroy) removes with its VIFs.

// recoverInterrupted finishes or undoes the operation the record of
// instance id says was interrupted (see above), if its owner is gone. It
// returns the operation, or busy when the owner still runs (another
// process, or another open Driver of this one, works on the instance).
// The caller holds id's lock.
func (d *recordRoom) recoverInterrupted(ctx context.Context, api APIClient, id string) (op string, busy bool, err error) {
	rec, ok, err := d.state.instances.Load(id)
	if err != nil || !ok || rec.Pending == nil || rec.Pending.Op == pendSpawn {
		return "", false, err
	}
	p := rec.Pending
	if !d.ownerGone(p.Owner) {
		return "", true, nil
	}
	rec.Pending = nil
	d.log.DebugContext(ctx, "recovering an interrupted operation", "id", id, "op", p.Op, "since", p.Since)
	if err := d.recoverOp(ctx, api, id, rec, p); err != nil {
		return p.Op, false, fmt.Errorf("recover the interrupted %s: %w", p.Op, err)
	}
	return p.Op, false, nil
}

// recoverOp brings instance id, whose record (without its journal) is rec,
// to a state the operation p names; see the table above.
func (d *recordRoom) recoverOp(ctx context.Context, api APIClient, id string, rec instanceRecord, p *pendingOp) error {
	if p.Prev == nil {
		p.Prev = &rec
	}
	switch p.Op {
	case pendRebuild:
		return d.recoverRebuild(ctx, api, id, rec, p)
	case pendDestroy:
		return d.life.destroyLocked(ctx, api, id, "recover-destroy")
	}
	if p.Op == pendSnapshot {
		if err := d.discardSnapshot(ctx, api, p); err != nil {
			return err
		}
	}
	t, err := d.life.current(ctx, api, id)
	if isNotFound(err) {
		// The container is gone: the record, as the operation left it,
		// is an orphan's (see Reconcile).
		return d.state.save(id, rec)
	}
	if err != nil {
		return err
	}
	t.rec, t.written = rec, p // the record on disk carries p: the next save clears it
	t.op = "recover-" + p.Op
	st := t.c.State
	running := st != nil && hasProcess(st.Status)
	pid := 0
	if running {
		pid = st.Pid
	}
	switch p.Op {
	case pendPowerOff, pendSoftDelete, pendStopUnknown:
		if !running {
			return d.save(t, rec)
		}
		t.cur = engineOnly(t.c)
		return d.life.stopInstance(ctx, t, rec, stopRequest{})
	case pendPowerOn, pendRestore, pendReboot, pendResume:
		want := *p.Prev
		want.SoftDeleted = false
		return d.restart(ctx, t, running, want)
	case pendSnapshot:
		if p.Paused && st != nil && st.Status == container.StatePaused {
			if err := d.life.pauseRequest(ctx, api, t.cid, false); err != nil && !isConflict(err) {
				return classify(err, hypervisor.ErrNotFound)
			}
		}
		return d.save(t, *p.Prev)
	case pendResize:
		return d.recoverResize(ctx, t, rec, p)
	case pendPlugVIFs:
		return d.undoPlugVIFs(ctx, t, rec, *p.Prev, pid)
	case pendUnplugVIFs:
		return d.finishUnplugVIFs(ctx, t, rec, p.VIFs, pid)
	case pendUpdateMetadata:
		in, ok, err := d.state.boot.Load(id)
		if err != nil {
			return err
		}
		if ok {
			in.Meta = rec.Metadata
			if err := d.guest.writeBootData(ctx, id, in, d.state.hasConfigDrive(id)); err != nil {
				return err
			}
		}
		return d.save(t, rec)
	}
	return fmt.Errorf("%w: unknown operation %q in the record's journal", hypervisor.ErrInvalidState, p.Op)
}

// engineOnly is the power state of container c as the engine alone says.
func engineOnly(c container.InspectResponse) hypervisor.State {
	return powerState(engineStateOf(c), instanceRecord{})
}

// restart starts instance t afresh through the one start path with want:
// a process that runs (started by the interrupted operation, whose
// post-start steps may not have run) is killed first.
func (d *recordRoom) restart(ctx context.Context, t *target, running bool, want instanceRecord) error {
	if running {
		d.intents.record(t.cid)
		if err := d.life.stopProcess(ctx, t.api, t.cid, t.c.State.Status == container.StatePaused, stopRequest{Kill: true}); err != nil {
			return err
		}
	}
	t.cur = hypervisor.StateShutdown
	done := d.ops.begin(t.cid, t.op)
	defer done()
	_, err := d.life.startInstance(ctx, t, want)
	return err
}

// discardSnapshot removes what an interrupted snapshot made: its committed
// image and its store image.
func (d *recordRoom) discardSnapshot(ctx context.Context, api APIClient, p *pendingOp) error {
	var errs []error
	if p.CommitRef != "" {
		rm := func() (bool, error) {
			_, err := api.ImageRemove(ctx, p.CommitRef, client.ImageRemoveOptions{PruneChildren: true})
			if err != nil && !isNotFound(err) {
				return false, fmt.Errorf("remove committed image %s: %w", p.CommitRef, classify(err, hypervisor.ErrImageNotFound))
			}
			return err == nil, nil
		}
		removed, err := rm()
		if err == nil && !removed && p.Sent == "commit" && p.Container != "" {
			// The commit may still be running in the engine: wait for
			// its end, then remove what it made.
			var came bool
			if came, err = d.awaitInFlight(ctx, api, p.Container, events.ActionCommit, p.SentAt); came {
				_, err = rm()
			}
		}
		errs = append(errs, err)
	}
	if p.StoreImage != "" {
		if w := d.images.snapshotWriter(); w == nil {
			errs = append(errs, fmt.Errorf("%w: store image %s of an interrupted snapshot: no snapshot store configured", hypervisor.ErrNotSupported, p.StoreImage))
		} else if err := w.Delete(ctx, p.StoreImage); err != nil {
			errs = append(errs, fmt.Errorf("delete store image %s: %w", p.StoreImage, classify(err, hypervisor.ErrImageNotFound)))
		}
	}
	return errors.Join(errs...)
}

// recoverRebuild undoes an interrupted rebuild: the new container (if
// any) goes, the old one gets its name back, the record from before is
// written, and the instance runs again if it ran.
func (d *recordRoom) recoverRebuild(ctx context.Context, api APIClient, id string, rec instanceRecord, p *pendingOp) error {
	main, merr := d.life.inspect(ctx, api, id)
	if merr != nil && !isNotFound(merr) {
		return merr
	}
	aside, aerr := d.inspectAside(ctx, api, id)
	if aerr != nil && !isNotFound(aerr) {
		return aerr
	}
	if aerr == nil && merr != nil && p.Sent == "create" {
		// The new container's create may still be running in the engine
		// (it holds the instance's name): wait for it.
		came, err := d.awaitInFlight(ctx, api, d.containerName(id), events.ActionCreate, p.SentAt)
		if err != nil {
			return err
		}
		if came {
			if main, merr = d.life.inspect(ctx, api, id); merr != nil && !isNotFound(merr) {
				return merr
			}
		}
	}
	switch {
	case aerr == nil:
		if merr == nil && main.ID != aside.ID {
			d.intents.record(main.ID)
			if err := d.removeContainer(ctx, api, main.ID); err != nil {
				return fmt.Errorf("remove the new container: %w", err)
			}
		}
		if _, err := api.ContainerRename(ctx, aside.ID, client.ContainerRenameOptions{NewName: d.containerName(id)}); err != nil {
			return fmt.Errorf("give the old container its name back: %w", classify(err, hypervisor.ErrNotFound))
		}
	case merr != nil:
		// Neither is there: the record is an orphan's (see Reconcile).
		return d.state.save(id, *p.Prev)
	}
	t, err := d.life.current(ctx, api, id)
	if err != nil {
		return err
	}
	t.rec, t.written = *p.Prev, p
	t.op = "recover-rebuild"
	st := t.c.State
	running := st != nil && hasProcess(st.Status)
	switch {
	case p.Running && running && parseTime(st.StartedAt).Equal(p.StartedAt) && !rec.PoweredOff:
		// Never stopped, nor asked to stop: as before. (A stop asked for
		// may still be under way in the engine: then it is started
		// afresh below, so that it does not stop after the recovery.)
		return d.save(t, *p.Prev)
	case p.Running:
		return d.restart(ctx, t, running, *p.Prev)
	case running:
		d.intents.record(t.cid)
		if err := d.life.stopProcess(ctx, api, t.cid, st.Status == container.StatePaused, stopRequest{Kill: true}); err != nil {
			return err
		}
	}
	return d.save(t, *p.Prev)
}

// recoverResize finishes a resize whose limits the engine has, and undoes
// one whose limits it does not.
func (d *recordRoom) recoverResize(ctx context.Context, t *target, rec instanceRecord, p *pendingOp) error {
	var have limits
	if t.c.HostConfig != nil {
		have = *limitsOf(t.c.HostConfig.Resources)
	}
	if p.NewLimits != nil && have == *p.NewLimits {
		rec.Flavor = p.Flavor
		return d.save(t, rec)
	}
	if p.Sent == sentUpdate && p.NewLimits != nil {
		// The update may still be in flight at the engine, which would
		// apply it after any undo sent now: finish the resize instead,
		// with the same request (the engine ends at the new limits
		// whichever of the two it serves last).
		if err := d.life.update(ctx, t.api, t.cid, p.NewLimits.resources(), have.resources()); err != nil {
			return err
		}
		rec.Flavor = p.Flavor
		return d.save(t, rec)
	}
	if p.OldLimits != nil && have != *p.OldLimits {
		// Part of it: put the old limits back.
		back := p.OldLimits.resources()
		if _, err := t.api.ContainerUpdate(ctx, t.cid, client.ContainerUpdateOptions{Resources: &back}); err != nil {
			return classify(err, hypervisor.ErrNotFound)
		}
	}
	return d.save(t, *p.Prev)
}

// undoPlugVIFs undoes an interrupted plug: the VIFs of rec that prev does
// not have (as they are) are detached from process pid (if any) and
// unplugged; those of prev that rec does not have (replaced ones) are
// plugged and attached again; the record and the guest's network files
// are prev's.
func (d *recordRoom) undoPlugVIFs(ctx context.Context, t *target, rec, prev instanceRecord, pid int) error {
	has := func(recs []vifRecord, r vifRecord) bool {
		return slices.ContainsFunc(recs, func(x vifRecord) bool { return x.Device == r.Device && vifEqual(x.VIF, r.VIF) })
	}
	for _, r := range rec.VIFs {
		if has(prev.VIFs, r) {
			continue
		}
		if pid > 0 {
			if err := d.opts.vifs.Detach(ctx, t.id, r.VIF, vifTarget(rec.VIFs, r, pid)); err != nil {
				return fmt.Errorf("detach VIF %s: %w", r.VIF.ID, classifyVIF(t.id, err))
			}
		}
		if err := d.vifs.unplugVIF(ctx, t.id, r.VIF); err != nil {
			return err
		}
	}
	for _, r := range prev.VIFs {
		if has(rec.VIFs, r) {
			continue
		}
		var u undo.Stack // nothing to undo: the record names the VIF already
		if err := d.vifs.plugVIF(ctx, t.id, r.VIF, &u); err != nil {
			return err
		}
		if pid > 0 {
			if err := d.vifs.attachVIF(ctx, t.id, prev.VIFs, r, pid, d.osInst.isOS(t.c)); err != nil {
				return err
			}
		}
	}
	if err := d.save(t, prev); err != nil {
		return err
	}
	return d.vifs.writeGuestNetwork(ctx, t.id, prev.VIFs)
}

// finishUnplugVIFs finishes an interrupted unplug of the VIFs ports.
func (d *recordRoom) finishUnplugVIFs(ctx context.Context, t *target, rec instanceRecord, ports []string, pid int) error {
	recs := slices.Clone(rec.VIFs)
	for _, port := range ports {
		i := slices.IndexFunc(recs, func(r vifRecord) bool { return r.VIF.ID == port })
		if i < 0 {
			continue
		}
		r := recs[i]
		if pid > 0 {
			if err := d.opts.vifs.Detach(ctx, t.id, r.VIF, vifTarget(recs, r, pid)); err != nil {
				return fmt.Errorf("detach VIF %s: %w", r.VIF.ID, classifyVIF(t.id, err))
			}
		}
		if err := d.vifs.unplugVIF(ctx, t.id, r.VIF); err != nil {
			return err
		}
		recs = slices.Delete(recs, i, i+1)
	}
	if len(recs) == 0 {
		recs = nil
	}
	rec.VIFs = recs
	if err := d.save(t, rec); err != nil {
		return err
	}
	return d.vifs.writeGuestNetwork(ctx, t.id, recs)
}

// inspectAside returns the set-aside container of an interrupted rebuild
// of instance id, or ErrNotFound.
func (d *recordRoom) inspectAside(ctx context.Context, api APIClient, id string) (container.InspectResponse, error) {
	name := d.containerName(id) + rebuildAsideSuffix
	res, err := api.ContainerInspect(ctx, name, client.ContainerInspectOptions{})
	if err != nil {
		return container.InspectResponse{}, classify(err, hypervisor.ErrNotFound)
	}
	c := res.Container
	if c.Config == nil || c.Config.Labels[d.label(labelInstanceID)] != id {
		return container.InspectResponse{}, fmt.Errorf("%w: %s: %w", hypervisor.ErrNotFound, name, errNotOurs)
	}
	return c, nil
}

// removeContainer removes container cid by force. A container that is
// gone is removed; one whose removal is under way already (a Destroy
// whose process died, say) is waited for, within ctx.
func (d *recordRoom) removeContainer(ctx context.Context, api APIClient, cid string) error {
	_, err := api.ContainerRemove(ctx, cid, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
	switch {
	case err == nil, isNotFound(err):
		return nil
	case isConflict(err):
		// "removal of container … is already in progress"
		return d.life.awaitRemoval(ctx, api, cid)
	}
	return classify(err, hypervisor.ErrNotFound)
}

// removeAside removes the set-aside container of instance id's rebuild,
// if one is left (a rebuild whose process died before it removed it).
func (d *recordRoom) removeAside(ctx context.Context, api APIClient, id string) error {
	c, err := d.inspectAside(ctx, api, id)
	if isNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	d.intents.record(c.ID)
	return d.removeContainer(ctx, api, c.ID)
}

// inFlightGrace bounds how long recovery waits for what an engine request
// of a dead process makes when the engine may still be serving it (see
// pendingOp.Sent). What such a request makes later still is removed by
// the next sweep (Reconcile's remove policy, Destroy, PruneImages).
const inFlightGrace = 10 * time.Second

// awaitInFlight waits, up to inFlightGrace within ctx, for the engine
// event action of container ref (a name or an ID) at or after since, the
// end of a request a dead process sent; it reports whether it came.
func (d *recordRoom) awaitInFlight(ctx context.Context, api APIClient, ref string, action events.Action, since time.Time) (bool, error) {
	wctx, cancel := context.WithTimeout(ctx, inFlightGrace)
	defer cancel()
	f := make(client.Filters).Add("type", string(events.ContainerEventType)).Add("container", ref).Add("event", string(action))
	res := api.Events(wctx, client.EventsListOptions{Since: engineTime(since.Add(-opSkew)), Filters: f})
	select {
	case <-res.Messages:
		return true, nil
	case err := <-res.Err:
		if ctx.Err() == nil && wctx.Err() != nil {
			return false, nil // nothing came: the request never reached the engine
		}
		if err == nil {
			err = wctx.Err()
		}
		return false, classify(err, hypervisor.ErrNotFound)
	case <-wctx.Done():
		if err := ctx.Err(); err != nil {
			return false, err
		}
		return false, nil
	}
}

// awaitSpawnCreate waits for the container of instance id whose spawn's
// process died when its create request may have been in flight (see
// pendingOp.Sent), and returns it if it came. rec is the instance's
// record; the caller holds its lock and found no container.
func (d *recordRoom) awaitSpawnCreate(ctx context.Context, api APIClient, id string, rec instanceRecord) (container.InspectResponse, bool, error) {
	p := rec.Pending
	if p == nil || p.Op != pendSpawn || p.Sent != "create" || !d.ownerGone(p.Owner) {
		return container.InspectResponse{}, false, nil
	}
	came, err := d.awaitInFlight(ctx, api, d.containerName(id), events.ActionCreate, p.SentAt)
	if err != nil || !came {
		return container.InspectResponse{}, false, err
	}
	c, err := d.life.inspect(ctx, api, id)
	if isNotFound(err) {
		return c, false, nil
	}
	return c, err == nil, err
}
