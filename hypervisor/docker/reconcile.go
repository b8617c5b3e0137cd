package docker

import (
	"context"
	"errors"
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

// ourContainers lists this driver's containers by instance ID: one list
// call, no inspect.
func (d *Driver) ourContainers(ctx context.Context, api APIClient) (map[string]ourContainer, error) {
	res, err := api.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: make(client.Filters).Add("label", d.label(labelInstanceID))})
	if err != nil {
		return nil, classify(err, hypervisor.ErrNotFound)
	}
	out := make(map[string]ourContainer, len(res.Items))
	for _, c := range res.Items {
		id := c.Labels[d.label(labelInstanceID)]
		if id == "" || !slices.Contains(c.Names, "/"+d.containerName(id)) {
			continue
		}
		out[id] = ourContainer{id: id, cid: c.ID, state: c.State, created: time.Unix(c.Created, 0)}
	}
	return out, nil
}

// Reconcile compares the engine's containers and the state directory's
// records of this driver with opts.Known and acts by opts.Policy; see
// hypervisor.Reconciler. It costs one container list, a read of the state
// directory and, per instance, a try of its lock: instances a call holds
// (a spawn in progress, say) are Busy and never touched, and so are
// instances whose spawn began after the reconcile did (their record's
// creation time says so). A half-finished spawn is a container whose
// record still carries the spawn mark while no call holds it: the process
// that spawned it died. Actions re-read the instance under its lock and
// go through the one stop path and Destroy's removal. A record is removed
// only after the engine said its container does not exist.
//
// Reconcile assumes one Driver per engine, prefixes and state directory
// acts at a time (the per-instance locks are in memory).
func (d *Driver) Reconcile(ctx context.Context, opts hypervisor.ReconcileOptions) (hypervisor.ReconcileReport, error) {
	rep, err := d.reconcile(ctx, opts)
	sortReport(&rep)
	return rep, opErr("reconcile", "", err)
}

func sortReport(r *hypervisor.ReconcileReport) {
	for _, s := range [][]string{r.Unknown, r.HalfSpawned, r.Orphaned, r.Missing, r.Busy, r.Stopped, r.Removed, r.Resumed} {
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

func (d *Driver) reconcile(ctx context.Context, opts hypervisor.ReconcileOptions) (hypervisor.ReconcileReport, error) {
	var rep hypervisor.ReconcileReport
	if err := opts.Validate(); err != nil {
		return rep, err
	}
	api, err := d.engine(ctx)
	if err != nil {
		return rep, err
	}
	began := time.Now()
	known := make(map[string]bool, len(opts.Known))
	for _, id := range opts.Known {
		known[id] = true
	}
	cs, err := d.ourContainers(ctx, api)
	if err != nil {
		return rep, err
	}
	keys, err := d.state.instances.Keys()
	if err != nil {
		return rep, err
	}
	for id := range known {
		if _, ok := cs[id]; !ok && !slices.Contains(keys, id) {
			rep.Missing = append(rep.Missing, id)
		}
	}
	ids := make([]string, 0, len(cs))
	for id := range cs {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		if err := ctx.Err(); err != nil {
			return rep, err
		}
		if err := d.reconcileOne(ctx, api, cs[id], known[id], opts, began, &rep); err != nil {
			if errors.Is(err, hypervisor.ErrUnavailable) {
				return rep, err // the engine went away: stop here
			}
			rep.Failed = append(rep.Failed, hypervisor.InstanceError{ID: id, Err: err})
		}
	}
	for _, id := range keys {
		if _, ok := cs[id]; ok {
			continue
		}
		if err := d.reconcileRecord(ctx, api, id, known[id], opts, began, &rep); err != nil {
			if errors.Is(err, hypervisor.ErrUnavailable) {
				return rep, err
			}
			rep.Failed = append(rep.Failed, hypervisor.InstanceError{ID: id, Err: err})
		}
	}
	return rep, nil
}

// reconcileOne handles one container under its lock, if it is free.
func (d *Driver) reconcileOne(ctx context.Context, api APIClient, c ourContainer, isKnown bool, opts hypervisor.ReconcileOptions, began time.Time, rep *hypervisor.ReconcileReport) error {
	unlock, ok := d.locks.TryLock(c.id)
	if !ok {
		rep.Busy = append(rep.Busy, c.id)
		return nil
	}
	defer unlock()
	rec, err := d.state.load(c.id)
	if err != nil {
		return err
	}
	if !rec.CreatedAt.IsZero() && !rec.CreatedAt.Before(began) || rec.CreatedAt.IsZero() && c.created.After(began) {
		rep.Busy = append(rep.Busy, c.id) // spawned after the reconcile began
		return nil
	}
	half := rec.Spawning
	switch {
	case half:
		rep.HalfSpawned = append(rep.HalfSpawned, c.id)
	case !isKnown:
		rep.Unknown = append(rep.Unknown, c.id)
	case opts.Resume:
		resumed, err := d.resumeLocked(ctx, api, c.id, "reconcile")
		if resumed {
			rep.Resumed = append(rep.Resumed, c.id)
		}
		return err
	default:
		return nil
	}
	switch opts.Policy {
	case hypervisor.ReconcileStop:
		t, err := d.current(ctx, api, c.id)
		if err != nil {
			return err
		}
		if t.cur != hypervisor.StateRunning && t.cur != hypervisor.StatePaused {
			return nil
		}
		t.op = "reconcile"
		done := d.ops.begin(t.cid, t.op)
		defer done()
		if err := d.stopInstance(ctx, t, t.rec, stopRequest{}); err != nil {
			return err
		}
		rep.Stopped = append(rep.Stopped, c.id)
	case hypervisor.ReconcileRemove:
		if err := d.destroyLocked(ctx, api, c.id, "reconcile"); err != nil {
			return err
		}
		rep.Removed = append(rep.Removed, c.id)
	}
	return nil
}

// reconcileRecord handles a record whose container the list did not
// show: an orphan once the engine confirms, under the ID's lock, that the
// container does not exist.
func (d *Driver) reconcileRecord(ctx context.Context, api APIClient, id string, isKnown bool, opts hypervisor.ReconcileOptions, began time.Time, rep *hypervisor.ReconcileReport) error {
	unlock, ok := d.locks.TryLock(id)
	if !ok {
		rep.Busy = append(rep.Busy, id)
		return nil
	}
	defer unlock()
	rec, ok, err := d.state.instances.Load(id)
	if err != nil || !ok {
		return err
	}
	if !rec.CreatedAt.Before(began) {
		rep.Busy = append(rep.Busy, id)
		return nil
	}
	if _, err := d.inspect(ctx, api, id); err == nil {
		return nil // it exists after all (created since the list)
	} else if !isNotFound(err) {
		return err
	}
	rep.Orphaned = append(rep.Orphaned, id)
	if isKnown {
		rep.Missing = append(rep.Missing, id)
	}
	if opts.Policy == hypervisor.ReconcileRemove {
		// The record's VIFs are unplugged with it: the host devices (and,
		// through the port observer, the firewall rules) of an instance
		// that is gone.
		if err := d.finishDestroy(ctx, id, false); err != nil {
			return err
		}
		rep.Removed = append(rep.Removed, id)
	}
	return nil
}

// Resume starts every instance whose intended state is running but whose
// container does not run, as after an engine or host restart: through the
// one start path, so the limits (resized ones included) and every
// post-start step hold. Several start at once. Instances a call holds are
// reported Busy. See hypervisor.Resumer.
func (d *Driver) Resume(ctx context.Context, opts hypervisor.ResumeOptions) (hypervisor.ResumeReport, error) {
	rep, err := d.resume(ctx, opts)
	slices.Sort(rep.Resumed)
	slices.Sort(rep.Busy)
	slices.SortFunc(rep.Failed, func(a, b hypervisor.InstanceError) int { return compareStrings(a.ID, b.ID) })
	return rep, opErr("resume", "", err)
}

func (d *Driver) resume(ctx context.Context, opts hypervisor.ResumeOptions) (hypervisor.ResumeReport, error) {
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
	cs, err := d.ourContainers(ctx, api)
	if err != nil {
		return rep, err
	}
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(resumeWorkers)
	for id, c := range cs {
		if len(opts.Only) > 0 && !slices.Contains(opts.Only, id) {
			continue
		}
		if c.state != container.StateExited && c.state != container.StateDead && c.state != container.StateCreated {
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
			resumed, err := d.resumeLocked(gctx, api, id, "resume")
			mu.Lock()
			defer mu.Unlock()
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

// resumeLocked starts instance id if it is intended to run and is shut
// down or crashed. The caller holds its lock.
func (d *Driver) resumeLocked(ctx context.Context, api APIClient, id, op string) (bool, error) {
	t, err := d.current(ctx, api, id)
	if err != nil {
		return false, err
	}
	if !t.rec.intendedRunning() || (t.cur != hypervisor.StateShutdown && t.cur != hypervisor.StateCrashed) {
		return false, nil
	}
	t.op = op
	done := d.ops.begin(t.cid, op)
	defer done()
	if _, err := d.startInstance(ctx, t, t.rec); err != nil {
		return false, err
	}
	return true, nil
}
