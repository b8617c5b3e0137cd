package hypervisortest

import (
	"context"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/dockervisor/dockervisor/hypervisor"
	"github.com/dockervisor/dockervisor/stats"
)

// Pseudo-operations of the Fake whose process events are not requested
// by a driver operation.
const (
	opCrash         = "crash"
	opOOMKill       = "oom-kill"
	opEngineRestart = "engine-restart"
)

// fakeAgent is the Fake's state for the [hypervisor.AgentDriver] roles.
// Guarded by Fake.mu.
type fakeAgent struct {
	op      string // the operation running now (under f.mu), for event reasons
	nodeID  string
	orphans map[string]bool // state records without an instance
	store   map[string]int64
	cache   map[string]*fakeCachedImage
	journal []hypervisor.Event // the event window, oldest first
}

type fakeCachedImage struct {
	size     int64
	lastUsed time.Time
}

// fakeInstanceExtra is an instance's state for the AgentDriver roles.
type fakeInstanceExtra struct {
	hardCPU       bool
	intentRunning bool // the last requested transition left it running
	halfSpawned   bool
	// snapshotPaused: a snapshot whose agent died paused it (see
	// InterruptSnapshot).
	snapshotPaused bool
}

type fakeAgentOptions struct {
	nodeUUID    string
	eventBuffer int
}

// Defaults of the Fake's event stream.
const (
	// DefaultFakeEventBuffer is how many events a Fake queues for a slow
	// subscriber before it ends the stream (see [hypervisor.EventReplayer]).
	DefaultFakeEventBuffer = 4096
	// FakeEventWindow is how many past events a Fake keeps for replay.
	FakeEventWindow = 4096
)

// WithNodeUUID sets the node UUID HostFacts reports, as a persisted one
// would be. The default is a random UUID, fixed for the Fake's life.
func WithNodeUUID(id string) FakeOption {
	return func(o *fakeOptions) { o.agent.nodeUUID = id }
}

// WithEventBuffer sets how many events the Fake queues for a subscriber
// that does not read before it ends that subscriber's stream with an
// ErrUnavailable error. Zero or less keeps DefaultFakeEventBuffer.
func WithEventBuffer(n int) FakeOption {
	return func(o *fakeOptions) { o.agent.eventBuffer = n }
}

func (f *Fake) initAgent() {
	if f.opts.agent.eventBuffer <= 0 {
		f.opts.agent.eventBuffer = DefaultFakeEventBuffer
	}
	f.agent.nodeID = f.opts.agent.nodeUUID
	if f.agent.nodeID == "" {
		b := randomHex(16)
		f.agent.nodeID = b[0:8] + "-" + b[8:12] + "-4" + b[13:16] + "-a" + b[17:20] + "-" + b[20:32]
	}
	f.agent.orphans = make(map[string]bool)
	f.agent.store = make(map[string]int64)
	f.agent.cache = make(map[string]*fakeCachedImage)
}

// involuntary reports whether the running operation stops processes
// without a request (a crash, an engine restart). Caller holds f.mu.
func (f *Fake) involuntary() bool {
	switch f.agent.op {
	case opCrash, opOOMKill, opEngineRestart:
		return true
	}
	return false
}

// reason fills in the reason of an event emitted by the running
// operation. Caller holds f.mu.
func (f *Fake) reason(ev *hypervisor.Event) {
	if ev.Reason != "" {
		return
	}
	switch f.agent.op {
	case opCrash:
		ev.Reason = hypervisor.ReasonExited
	case opOOMKill:
		ev.Reason = hypervisor.ReasonOOMKilled
	case opEngineRestart:
		ev.Reason = hypervisor.ReasonEngineStopped
	default:
		ev.Reason, ev.Operation = hypervisor.ReasonRequested, f.agent.op
	}
}

// OOMKill makes the kernel's OOM killer kill a running or paused
// instance: it becomes crashed with exit code 137.
func (f *Fake) OOMKill(id string) error {
	const op = opOOMKill
	return f.with(context.Background(), op, id, func(fi *fakeInstance) error {
		if err := hypervisor.CheckState(op, id, fi.inst.State, stHasProcess...); err != nil {
			return err
		}
		f.stop(fi, hypervisor.StateCrashed, 137)
		return nil
	})
}

// RestartEngine simulates a restart of the engine under the Fake: every
// instance with a process stops (shut down, with EventStopped events of
// reason ReasonEngineStopped) and keeps its intended state, and every
// open event stream ends with an ErrUnavailable error, as a dropped
// engine connection ends it.
func (f *Fake) RestartEngine() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.agent.op = opEngineRestart
	for _, fi := range f.instances {
		if slices.Contains(stHasProcess, fi.inst.State) {
			f.stop(fi, hypervisor.StateShutdown, 143)
		}
	}
	for s := range f.subs {
		s.end(errEngineRestarted)
	}
}

// AddHalfSpawned adds an instance whose spawn never finished, as a spawn
// interrupted by a crash of the agent leaves it: created, never started.
func (f *Fake) AddHalfSpawned(spec hypervisor.InstanceSpec) error {
	if err := spec.Validate(); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.instances[spec.ID] != nil {
		return fmt.Errorf("%w: %q", hypervisor.ErrAlreadyExists, spec.ID)
	}
	f.instances[spec.ID] = &fakeInstance{
		inst: hypervisor.Instance{
			ID: spec.ID, Name: spec.Hostname(), Image: spec.Image, BackendID: randomHex(32),
			State: hypervisor.StateCreated, VCPUs: spec.EffectiveVCPUs(), MemoryMB: spec.MemoryMB,
			CreatedAt: f.now().Add(-time.Minute), Labels: maps.Clone(spec.Labels), Metadata: maps.Clone(spec.Metadata),
		},
		extra: fakeInstanceExtra{halfSpawned: true, hardCPU: spec.HardCPULimit},
	}
	return nil
}

// InterruptSnapshot leaves running instance id as a snapshot whose agent
// died between its pause and its unpause leaves it: paused, with the
// snapshot's mark. Reconcile (with a policy other than report-only) and
// Resume report it Interrupted and unpause it; a user's pause has no mark
// and stays.
func (f *Fake) InterruptSnapshot(id string) error {
	const op = "snapshot"
	return f.with(context.Background(), op, id, func(fi *fakeInstance) error {
		if err := hypervisor.CheckState(op, id, fi.inst.State, hypervisor.StateRunning); err != nil {
			return err
		}
		now := f.now()
		fi.cpuAcc += now.Sub(fi.runSince)
		fi.runSince = time.Time{}
		fi.inst.State = hypervisor.StatePaused
		fi.extra.snapshotPaused = true
		f.emit(hypervisor.Event{Type: hypervisor.EventPaused, ID: id, Time: now, Cause: hypervisor.CauseSnapshot})
		return nil
	})
}

// recoverInterrupted undoes the interrupted snapshot of fi, if any, and
// reports whether there was one. Caller holds f.mu.
func (f *Fake) recoverInterrupted(fi *fakeInstance) bool {
	if !fi.extra.snapshotPaused {
		return false
	}
	fi.extra.snapshotPaused = false
	if fi.inst.State == hypervisor.StatePaused {
		now := f.now()
		fi.runSince = now
		fi.inst.State = hypervisor.StateRunning
		f.emit(hypervisor.Event{Type: hypervisor.EventUnpaused, ID: fi.inst.ID, Time: now, Cause: hypervisor.CauseSnapshot})
	}
	return true
}

// AddOrphanRecord adds a state record for id without an instance, as an
// instance removed behind the driver's back leaves it.
func (f *Fake) AddOrphanRecord(id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.agent.orphans[id] = true
}

// OrphanRecords returns the IDs of the state records without an instance.
func (f *Fake) OrphanRecords() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Sorted(maps.Keys(f.agent.orphans))
}

// Reconcile compares the Fake's instances and records with opts.Known.
// See [hypervisor.Reconciler].
func (f *Fake) Reconcile(ctx context.Context, opts hypervisor.ReconcileOptions) (hypervisor.ReconcileReport, error) {
	const op = "reconcile"
	var rep hypervisor.ReconcileReport
	if err := opts.Validate(); err != nil {
		return rep, hypervisor.WrapOp(op, "", err)
	}
	if err := ctx.Err(); err != nil {
		return rep, hypervisor.WrapOp(op, "", err)
	}
	if f.isClosed() {
		return rep, hypervisor.WrapOp(op, "", errUnavailable())
	}
	began := f.now()
	known := make(map[string]bool, len(opts.Known))
	for _, id := range opts.Known {
		known[id] = true
	}
	f.mu.Lock()
	ids := slices.Sorted(maps.Keys(f.instances))
	orphans := slices.Sorted(maps.Keys(f.agent.orphans))
	f.mu.Unlock()
	for id := range known {
		f.mu.Lock()
		_, ok := f.instances[id]
		f.mu.Unlock()
		if !ok {
			rep.Missing = append(rep.Missing, id)
		}
	}
	slices.Sort(rep.Missing)

	for _, id := range ids {
		unlock, ok := f.locks.TryLock(id)
		if !ok {
			rep.Busy = append(rep.Busy, id)
			continue
		}
		f.mu.Lock()
		fi := f.instances[id]
		if fi != nil && fi.inst.CreatedAt.Before(began) && fi.extra.snapshotPaused {
			rep.Interrupted = append(rep.Interrupted, id)
			if opts.Policy != hypervisor.ReconcileReportOnly {
				f.agent.op = op
				f.recoverInterrupted(fi)
			}
		}
		switch {
		case fi == nil:
		case !fi.inst.CreatedAt.Before(began):
			rep.Busy = append(rep.Busy, id)
		case fi.extra.halfSpawned || !known[id]:
			if fi.extra.halfSpawned {
				rep.HalfSpawned = append(rep.HalfSpawned, id)
			} else {
				rep.Unknown = append(rep.Unknown, id)
			}
			switch opts.Policy {
			case hypervisor.ReconcileStop:
				if slices.Contains(stHasProcess, fi.inst.State) {
					f.agent.op = op
					f.stop(fi, hypervisor.StateShutdown, 0)
					rep.Stopped = append(rep.Stopped, id)
				}
			case hypervisor.ReconcileRemove:
				f.agent.op = op
				f.stop(fi, hypervisor.StateShutdown, 0)
				delete(f.instances, id)
				f.emit(hypervisor.Event{Type: hypervisor.EventDestroyed, ID: id, Time: f.now()})
				rep.Removed = append(rep.Removed, id)
			}
		case opts.Resume && fi.extra.intentRunning && fi.inst.State.IsStopped() && fi.inst.State != hypervisor.StateSoftDeleted:
			f.agent.op = "resume"
			f.start(fi)
			rep.Resumed = append(rep.Resumed, id)
		}
		f.mu.Unlock()
		unlock()
	}
	f.mu.Lock()
	for _, id := range orphans {
		if f.instances[id] != nil || !f.agent.orphans[id] {
			continue
		}
		rep.Orphaned = append(rep.Orphaned, id)
		if opts.Policy == hypervisor.ReconcileRemove {
			delete(f.agent.orphans, id)
			rep.Removed = append(rep.Removed, id)
		}
	}
	f.mu.Unlock()
	slices.Sort(rep.Removed)
	return rep, nil
}

// Resume starts the instances whose intended state is running but that
// are stopped. See [hypervisor.Resumer].
func (f *Fake) Resume(ctx context.Context, opts hypervisor.ResumeOptions) (hypervisor.ResumeReport, error) {
	const op = "resume"
	rep := hypervisor.ResumeReport{Time: f.now()}
	for _, id := range opts.Only {
		if err := hypervisor.ValidateID(id); err != nil {
			return rep, hypervisor.WrapOp(op, "", err)
		}
	}
	if err := ctx.Err(); err != nil {
		return rep, hypervisor.WrapOp(op, "", err)
	}
	if f.isClosed() {
		return rep, hypervisor.WrapOp(op, "", errUnavailable())
	}
	f.mu.Lock()
	ids := slices.Sorted(maps.Keys(f.instances))
	f.mu.Unlock()
	for _, id := range ids {
		if len(opts.Only) > 0 && !slices.Contains(opts.Only, id) {
			continue
		}
		unlock, ok := f.locks.TryLock(id)
		if !ok {
			rep.Busy = append(rep.Busy, id)
			continue
		}
		f.mu.Lock()
		if fi := f.instances[id]; fi != nil {
			f.agent.op = op
			if f.recoverInterrupted(fi) {
				rep.Interrupted = append(rep.Interrupted, id)
			}
		}
		if fi := f.instances[id]; fi != nil && fi.extra.intentRunning &&
			(fi.inst.State == hypervisor.StateShutdown || fi.inst.State == hypervisor.StateCrashed) {
			f.agent.op = op
			f.start(fi)
			rep.Resumed = append(rep.Resumed, id)
		}
		f.mu.Unlock()
		unlock()
	}
	return rep, nil
}

// Resize changes an instance's limits. The Fake's instances use
// fakeMemoryUseBytes (8 MiB) while they have a process, so a smaller
// memory limit is a *hypervisor.LimitError then. See [hypervisor.Resizer].
func (f *Fake) Resize(ctx context.Context, id string, fl hypervisor.Flavor) error {
	const op = "resize"
	if err := fl.Validate(); err != nil {
		if verr := hypervisor.ValidateID(id); verr != nil {
			err = verr
		}
		return hypervisor.WrapOp(op, id, err)
	}
	return f.with(ctx, op, id, func(fi *fakeInstance) error {
		if err := hypervisor.CheckState(op, id, fi.inst.State, hypervisor.ResizeStates...); err != nil {
			return err
		}
		if fl.EffectiveVCPUs() > f.opts.vcpus && fl.HardCPULimit {
			return &hypervisor.LimitError{ID: id, Resource: "vcpus", Want: int64(fl.EffectiveVCPUs()), Have: int64(f.opts.vcpus)}
		}
		if fl.MemoryMB == 0 && fi.inst.MemoryMB > 0 {
			return fmt.Errorf("%w: the memory limit of a live instance cannot be removed", hypervisor.ErrInvalidArgument)
		}
		used, _ := f.memory(fi)
		if fl.MemoryMB > 0 && uint64(fl.MemoryMB)<<20 < used {
			return &hypervisor.LimitError{ID: id, Resource: "memory", Want: fl.MemoryMB << 20, Have: int64(used)}
		}
		fi.inst.VCPUs = fl.EffectiveVCPUs()
		fi.inst.MemoryMB = fl.MemoryMB
		fi.extra.hardCPU = fl.HardCPULimit
		nf := fl
		nf.VCPUs = fl.EffectiveVCPUs()
		f.emit(hypervisor.Event{Type: hypervisor.EventResized, ID: id, Time: f.now(), Flavor: &nf})
		return nil
	})
}

// AddStoreImage puts an image of size bytes into the Fake's image store:
// PrefetchImage fetches it, and Spawn of its ID fetches it when missing.
func (f *Fake) AddStoreImage(id string, size int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.agent.store[id] = size
}

// fetchFromStore makes store image id an image of the Fake, cached.
// Caller holds f.mu.
func (f *Fake) fetchFromStore(id string) bool {
	size, ok := f.agent.store[id]
	if !ok {
		return false
	}
	f.images[id] = true
	f.agent.cache[id] = &fakeCachedImage{size: size, lastUsed: f.now()}
	return true
}

// touchImage marks a cached image as used now. Caller holds f.mu.
func (f *Fake) touchImage(id string) {
	if c := f.agent.cache[id]; c != nil {
		c.lastUsed = f.now()
	}
}

// PrefetchImage fetches a store image (see [Fake.AddStoreImage]) into the
// cache. See [hypervisor.ImageCache].
func (f *Fake) PrefetchImage(ctx context.Context, id string) error {
	const op = "prefetch-image"
	if strings.TrimSpace(id) == "" {
		return hypervisor.WrapOp(op, "", fmt.Errorf("%w: empty image ID", hypervisor.ErrInvalidArgument))
	}
	if err := ctx.Err(); err != nil {
		return hypervisor.WrapOp(op, "", err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return hypervisor.WrapOp(op, "", errUnavailable())
	}
	if c := f.agent.cache[id]; c != nil && f.images[id] {
		return nil
	}
	if !f.fetchFromStore(id) {
		return hypervisor.WrapOp(op, "", fmt.Errorf("%w: %q is not in the fake's store", hypervisor.ErrImageNotFound, id))
	}
	return nil
}

// PruneImages removes cached store images no instance uses. See
// [hypervisor.ImageCache].
func (f *Fake) PruneImages(ctx context.Context, opts hypervisor.PruneOptions) (hypervisor.PruneReport, error) {
	const op = "prune-images"
	var rep hypervisor.PruneReport
	if err := opts.Validate(); err != nil {
		return rep, hypervisor.WrapOp(op, "", err)
	}
	if err := ctx.Err(); err != nil {
		return rep, hypervisor.WrapOp(op, "", err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return rep, hypervisor.WrapOp(op, "", errUnavailable())
	}
	used := make(map[string]bool)
	for _, fi := range f.instances {
		used[fi.inst.Image] = true
	}
	var all []hypervisor.CachedImage
	for id, c := range f.agent.cache {
		all = append(all, hypervisor.CachedImage{StoreID: id, Size: c.size, LastUsed: c.lastUsed, InUse: used[id]})
	}
	keep, drop := hypervisor.PlanPrune(all, opts, f.now())
	for _, c := range drop {
		delete(f.agent.cache, c.StoreID)
		delete(f.images, c.StoreID)
		rep.FreedBytes += c.Size
	}
	rep.Removed, rep.Kept = drop, keep
	return rep, nil
}

// AllInstanceStats samples every instance as InstanceStats does. See
// [hypervisor.BulkStatsReader].
func (f *Fake) AllInstanceStats(ctx context.Context) ([]stats.Instance, error) {
	const op = "all-instance-stats"
	if err := ctx.Err(); err != nil {
		return nil, hypervisor.WrapOp(op, "", err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return nil, hypervisor.WrapOp(op, "", errUnavailable())
	}
	out := make([]stats.Instance, 0, len(f.instances))
	for _, id := range slices.Sorted(maps.Keys(f.instances)) {
		out = append(out, f.sample(f.instances[id]))
	}
	return out, nil
}

// HostFacts reports the simulated host. See [hypervisor.HostFactsReporter].
func (f *Fake) HostFacts(ctx context.Context) (hypervisor.HostFacts, error) {
	const op = "host-facts"
	if err := ctx.Err(); err != nil {
		return hypervisor.HostFacts{}, hypervisor.WrapOp(op, "", err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return hypervisor.HostFacts{}, hypervisor.WrapOp(op, "", errUnavailable())
	}
	return hypervisor.HostFacts{
		NodeUUID:      f.agent.nodeID,
		Hostname:      f.opts.hostname,
		Addresses:     []netip.Addr{netip.MustParseAddr("192.0.2.10")},
		Architecture:  "amd64",
		OS:            "linux",
		KernelVersion: "6.0.0-fake",
		EngineVersion: "1.0.0",
	}, nil
}
