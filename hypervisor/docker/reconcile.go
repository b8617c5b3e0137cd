package docker

import (
	"context"
	"errors"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"golang.org/x/sync/errgroup"

	"github.com/dockervisor/dockervisor/hypervisor"
)

// resumeWorkers bounds the instances Resume starts at once.
const resumeWorkers = 4

// ourContainer is one of this driver's containers as the engine lists it.
type ourContainer struct {
	id, cid string
	state   container.ContainerState
	created time.Time // engine clock
}

// ourContainers lists this driver's containers by instance ID, one list
// call and no inspect: the instances' own (named prefix+ID) and, apart,
// the set-aside containers of rebuilds (prefix+ID+"-rebuild-old"). A
// container with the driver's label under another name is another
// driver's (one with the same label prefix and another name prefix).
func (d *recordRoom) ourContainers(ctx context.Context, api APIClient) (main, aside map[string]ourContainer, err error) {
	res, err := api.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: make(client.Filters).Add("label", d.label(labelInstanceID))})
	if err != nil {
		return nil, nil, classify(err, hypervisor.ErrNotFound)
	}
	main = make(map[string]ourContainer, len(res.Items))
	aside = make(map[string]ourContainer)
	for _, c := range res.Items {
		id := c.Labels[d.label(labelInstanceID)]
		if id == "" {
			continue
		}
		oc := ourContainer{id: id, cid: c.ID, state: c.State, created: time.Unix(c.Created, 0)}
		switch {
		case slices.Contains(c.Names, "/"+d.containerName(id)):
			main[id] = oc
		case slices.Contains(c.Names, "/"+d.containerName(id)+rebuildAsideSuffix):
			aside[id] = oc
		}
	}
	return main, aside, nil
}

// Reconcile compares the engine's containers and the state directory's
// records of this driver with opts.Known and acts by opts.Policy; see
// hypervisor.Reconciler. It costs one container list, a read of the state
// directory and, per instance, a try of its lock: instances a call holds
// (a spawn in progress, say) are Busy and never touched, and so are
// instances whose spawn began after the reconcile did (their record's
// creation time says so). A half-finished spawn is a container whose
// record still carries the spawn mark while no call holds it: the process
// that spawned it died. An operation that a dead process left half done
// (its record's intent journal says so) is Interrupted and, with a policy
// other than report-only, finished or undone first (see recover.go). A
// container the engine is removing is waited for. Actions re-read the
// instance under its lock and go through the one stop path and Destroy's
// removal. A record is removed only after the engine said its container
// does not exist.
//
// The remove policy also removes what no instance owns any more: the
// set-aside container of a rebuild whose process died before it removed
// it, committed images of this driver's snapshots (in
// snapshot.CommitRepository) that no snapshot in progress uses, temporary
// files that a process killed in the middle of a write left in the
// driver's part of the state directory, and boot data, config drives and
// resolv.conf files of instances that have neither a record nor a
// container.
//
// Reconcile assumes one Driver per engine, prefixes and state directory
// acts at a time (the per-instance locks are in memory); the intent
// journals name their process, so an operation of another live process
// is reported Busy and left alone.
func (d *recordRoom) Reconcile(ctx context.Context, opts hypervisor.ReconcileOptions) (hypervisor.ReconcileReport, error) {
	rep, err := d.reconcile(ctx, opts)
	sortReport(&rep)
	return rep, opErr("reconcile", "", err)
}

func sortReport(r *hypervisor.ReconcileReport) {
	for _, s := range [][]string{r.Unknown, r.HalfSpawned, r.Orphaned, r.Missing, r.Busy, r.Interrupted, r.Stopped, r.Removed, r.Resumed} {
		slices.Sort(s)
	}
	slices.SortFunc(r.Failed, func(a, b hypervisor.InstanceError) int { return compareStrings(a.ID, b.ID) })
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// reconcileRun is one Reconcile's input and report.
type reconcileRun struct {
	api   APIClient
	opts  hypervisor.ReconcileOptions
	known map[string]bool
	began time.Time
	rep   hypervisor.ReconcileReport
}

func (d *recordRoom) reconcile(ctx context.Context, opts hypervisor.ReconcileOptions) (hypervisor.ReconcileReport, error) {
	if err := opts.Validate(); err != nil {
		return hypervisor.ReconcileReport{}, err
	}
	api, err := d.engine(ctx)
	if err != nil {
		return hypervisor.ReconcileReport{}, err
	}
	r := &reconcileRun{api: api, opts: opts, known: make(map[string]bool, len(opts.Known)), began: time.Now()}
	for _, id := range opts.Known {
		r.known[id] = true
	}
	main, aside, err := d.ourContainers(ctx, api)
	if err != nil {
		return r.rep, err
	}
	keys, err := d.state.instances.Keys()
	if err != nil {
		return r.rep, err
	}
	ids := make(map[string]bool, len(main)+len(keys))
	for id := range main {
		ids[id] = true
	}
	for id := range aside {
		ids[id] = true
	}
	for _, id := range keys {
		ids[id] = true
	}
	for id := range r.known {
		if !ids[id] {
			r.rep.Missing = append(r.rep.Missing, id)
		}
	}
	for _, id := range slices.Sorted(maps.Keys(ids)) {
		if err := ctx.Err(); err != nil {
			return r.rep, err
		}
		mc, hasMain := main[id]
		_, hasAside := aside[id]
		if err := d.reconcileID(ctx, r, id, mc, hasMain, hasAside); err != nil {
			if errors.Is(err, hypervisor.ErrUnavailable) {
				return r.rep, err // the engine went away: stop here
			}
			r.rep.Failed = append(r.rep.Failed, hypervisor.InstanceError{ID: id, Err: err})
		}
	}
	if opts.Policy == hypervisor.ReconcileRemove {
		if err := d.sweep(ctx, api, ids); err != nil {
			return r.rep, err
		}
	}
	return r.rep, nil
}

// reconcileID handles instance id (its container mc if hasMain, a
// set-aside container if hasAside, its record if any) under its lock, if
// it is free.
func (d *recordRoom) reconcileID(ctx context.Context, r *reconcileRun, id string, mc ourContainer, hasMain, hasAside bool) error {
	unlock, ok := d.locks.TryLock(id)
	if !ok {
		r.rep.Busy = append(r.rep.Busy, id)
		return nil
	}
	defer unlock()
	rec, hasRec, err := d.state.instances.Load(id)
	if err != nil {
		return err
	}
	if hasRec && !rec.CreatedAt.IsZero() && !rec.CreatedAt.Before(r.began) || (!hasRec || rec.CreatedAt.IsZero()) && hasMain && mc.created.After(r.began) {
		r.rep.Busy = append(r.rep.Busy, id) // spawned after the reconcile began
		return nil
	}
	if p := rec.Pending; hasRec && p != nil {
		if !d.ownerGone(p.Owner) {
			r.rep.Busy = append(r.rep.Busy, id) // another process works on it
			return nil
		}
		if p.Op != pendSpawn {
			r.rep.Interrupted = append(r.rep.Interrupted, id)
			if r.opts.Policy == hypervisor.ReconcileReportOnly {
				if !hasMain {
					return nil // a rebuild's old container, set aside
				}
			} else {
				if _, _, err := d.recoverInterrupted(ctx, r.api, id); err != nil {
					return err
				}
				// Recovery may have renamed, removed or started
				// containers: look again.
				c, err := d.life.inspect(ctx, r.api, id)
				if err != nil && !isNotFound(err) {
					return err
				}
				hasMain = err == nil
				if hasMain {
					mc = ourContainer{id: id, cid: c.ID, state: c.State.Status}
				}
				if rec, hasRec, err = d.state.instances.Load(id); err != nil {
					return err
				}
				_, aerr := d.inspectAside(ctx, r.api, id)
				hasAside = aerr == nil
			}
		}
	}
	if hasAside && r.opts.Policy == hypervisor.ReconcileRemove {
		// A finished rebuild's old container, whose removal the rebuild's
		// process did not live to do.
		if err := d.removeAside(ctx, r.api, id); err != nil {
			return err
		}
	}
	if !hasMain && hasRec {
		// A spawn whose process died as it asked for the container: the
		// engine may still be creating it.
		c, ok, err := d.awaitSpawnCreate(ctx, r.api, id, rec)
		if err != nil {
			return err
		}
		if ok {
			hasMain, mc = true, ourContainer{id: id, cid: c.ID, state: c.State.Status}
		}
	}
	if hasMain && mc.state == container.StateRemoving {
		// The forced removal of a Destroy whose process died.
		if err := d.life.awaitRemoval(ctx, r.api, mc.cid); err != nil {
			return err
		}
		hasMain = false
	}
	switch {
	case hasMain:
		return d.reconcileOne(ctx, r, id, mc, rec)
	case hasRec:
		return d.reconcileRecord(ctx, r, id)
	}
	return nil
}

// reconcileOne handles instance id, whose container exists, under its
// lock.
func (d *recordRoom) reconcileOne(ctx context.Context, r *reconcileRun, id string, mc ourContainer, rec instanceRecord) error {
	switch {
	case rec.Spawning:
		r.rep.HalfSpawned = append(r.rep.HalfSpawned, id)
	case !r.known[id]:
		r.rep.Unknown = append(r.rep.Unknown, id)
	case r.opts.Resume && (mc.state == container.StateExited || mc.state == container.StateCreated):
		// Only a stopped container may need starting (as in Resume).
		resumed, err := d.resumeLocked(ctx, r.api, id, "reconcile")
		if resumed {
			r.rep.Resumed = append(r.rep.Resumed, id)
		}
		return err
	default:
		return nil
	}
	switch r.opts.Policy {
	case hypervisor.ReconcileStop:
		t, err := d.life.current(ctx, r.api, id)
		if err != nil {
			return err
		}
		if t.cur != hypervisor.StateRunning && t.cur != hypervisor.StatePaused {
			return nil
		}
		t.op = "reconcile"
		done := d.ops.begin(t.cid, t.op)
		defer done()
		d.beginOp(t, pendStopUnknown)
		if err := errors.Join(d.life.stopInstance(ctx, t, t.rec, stopRequest{}), d.endOp(t)); err != nil {
			return err
		}
		r.rep.Stopped = append(r.rep.Stopped, id)
	case hypervisor.ReconcileRemove:
		if err := d.life.destroyLocked(ctx, r.api, id, "reconcile"); err != nil {
			return err
		}
		r.rep.Removed = append(r.rep.Removed, id)
	}
	return nil
}

// reconcileRecord handles a record whose container the list did not
// show: an orphan once the engine confirms, under the ID's lock, that the
// container does not exist.
func (d *recordRoom) reconcileRecord(ctx context.Context, r *reconcileRun, id string) error {
	if _, err := d.life.inspect(ctx, r.api, id); err == nil {
		return nil // it exists after all (created since the list)
	} else if !isNotFound(err) {
		return err
	}
	r.rep.Orphaned = append(r.rep.Orphaned, id)
	if r.known[id] {
		r.rep.Missing = append(r.rep.Missing, id)
	}
	if r.opts.Policy == hypervisor.ReconcileRemove {
		// The record's VIFs are unplugged with it: the host devices (and,
		// through the port observer, the firewall rules) of an instance
		// that is gone.
		if err := d.life.finishDestroy(ctx, id, false); err != nil {
			return err
		}
		r.rep.Removed = append(r.rep.Removed, id)
	}
	return nil
}

// Resume starts every instance whose intended state is running but whose
// container does not run, as after an engine or host restart: through the
// one start path, so the limits (resized ones included) and every
// post-start step hold. Several start at once. Instances a call holds are
// reported Busy. An operation a dead process left half done (see
// recover.go) is finished or undone first, and reported Interrupted. A
// container the engine is removing, or whose removal failed (dead), is
// never started. See hypervisor.Resumer.
func (d *recordRoom) Resume(ctx context.Context, opts hypervisor.ResumeOptions) (hypervisor.ResumeReport, error) {
	rep, err := d.resume(ctx, opts)
	slices.Sort(rep.Resumed)
	slices.Sort(rep.Busy)
	slices.Sort(rep.Interrupted)
	slices.SortFunc(rep.Failed, func(a, b hypervisor.InstanceError) int { return compareStrings(a.ID, b.ID) })
	return rep, opErr("resume", "", err)
}

func (d *recordRoom) resume(ctx context.Context, opts hypervisor.ResumeOptions) (hypervisor.ResumeReport, error) {
	rep := hypervisor.ResumeReport{Time: time.Now()}
	for _, id := range opts.Only {
		if err := hypervisor.ValidateID(id); err != nil {
			return rep, err
		}
	}
	api, err := d.engine(ctx)
	if err != nil {
		return rep, err
	}
	main, _, err := d.ourContainers(ctx, api)
	if err != nil {
		return rep, err
	}
	ids, err := d.interruptedIDs()
	if err != nil {
		return rep, err
	}
	for id, c := range main {
		if c.state == container.StateExited || c.state == container.StateCreated {
			// Running, paused, being removed or dead (a container whose
			// removal failed, which the engine will not start) are left.
			ids[id] = true
		}
	}
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(resumeWorkers)
	for id := range ids {
		if len(opts.Only) > 0 && !slices.Contains(opts.Only, id) {
			continue
		}
		g.Go(func() error {
			unlock, ok := d.locks.TryLock(id)
			if !ok {
				mu.Lock()
				rep.Busy = append(rep.Busy, id)
				mu.Unlock()
				return nil
			}
			defer unlock()
			op, busy, err := d.recoverInterrupted(gctx, api, id)
			resumed := false
			if err == nil && !busy {
				resumed, err = d.resumeLocked(gctx, api, id, "resume")
			}
			mu.Lock()
			defer mu.Unlock()
			switch {
			case busy:
				rep.Busy = append(rep.Busy, id)
			case op != "":
				rep.Interrupted = append(rep.Interrupted, id)
			}
			if resumed {
				rep.Resumed = append(rep.Resumed, id)
			}
			if err != nil {
				if errors.Is(err, hypervisor.ErrUnavailable) {
					return err
				}
				rep.Failed = append(rep.Failed, hypervisor.InstanceError{ID: id, Err: err})
			}
			return nil
		})
	}
	return rep, g.Wait()
}

// interruptedIDs returns the instances whose record holds the intent
// journal of an operation (see pending.go), other than a spawn's.
func (d *recordRoom) interruptedIDs() (map[string]bool, error) {
	keys, err := d.state.instances.Keys()
	if err != nil {
		return nil, err
	}
	ids := make(map[string]bool)
	for _, id := range keys {
		rec, ok, err := d.state.instances.Load(id)
		if err == nil && ok && rec.Pending != nil && rec.Pending.Op != pendSpawn {
			ids[id] = true
		}
	}
	return ids, nil
}

// resumeLocked starts instance id if it is intended to run and is shut
// down or crashed. The caller holds its lock. An instance that is gone,
// or whose container the engine is removing, is not resumed.
func (d *recordRoom) resumeLocked(ctx context.Context, api APIClient, id, op string) (bool, error) {
	t, err := d.life.current(ctx, api, id)
	if isNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if !t.rec.intendedRunning() || (t.cur != hypervisor.StateShutdown && t.cur != hypervisor.StateCrashed) {
		return false, nil
	}
	if t.c.State != nil && t.c.State.Dead {
		return false, nil // its removal failed: the engine will not start it
	}
	t.op = op
	done := d.ops.begin(t.cid, op)
	defer done()
	d.beginOp(t, pendResume)
	_, err = d.life.startInstance(ctx, t, t.rec)
	if err = errors.Join(err, d.endOp(t)); err != nil {
		return false, err
	}
	return true, nil
}
