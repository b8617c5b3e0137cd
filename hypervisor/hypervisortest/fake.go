package hypervisortest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/dockervisor/dockervisor/hypervisor"
	"github.com/dockervisor/dockervisor/hypervisor/internal/bootdata"
	"github.com/dockervisor/dockervisor/image"
	"github.com/dockervisor/dockervisor/internal/keymutex"
	"github.com/dockervisor/dockervisor/network"
)

// Defaults of a Fake's simulated host, changed with [WithHost].
const (
	// DefaultFakeHostname is the host name, and only node, of a Fake.
	DefaultFakeHostname = "fake-node"
	// DefaultFakeVCPUs is the number of host CPUs a Fake reports.
	DefaultFakeVCPUs = 8
	// DefaultFakeMemoryMB is the host memory a Fake reports, in MiB.
	DefaultFakeMemoryMB = 16384
	// DefaultFakeDiskGB is the host disk a Fake reports, in GiB.
	DefaultFakeDiskGB = 100
)

// FakeHypervisorType is the HypervisorType a Fake reports.
const FakeHypervisorType = "fake"

// fakeMemoryUseBytes is the memory a running or paused fake instance uses,
// capped by its limit.
const fakeMemoryUseBytes = 8 << 20

// errClosed is the cause of every error returned after Close.
var errClosed = errors.New("fake driver is closed")

// Fake is a stateful, in-memory [hypervisor.Driver] for tests. It follows
// the state table and the idempotency, concurrency and error rules of
// package hypervisor, and passes [TestDriver].
//
// Images: the Fake knows only the images registered with [WithImages] or
// [Fake.AddImage]. An empty image set means that no image exists, as on an
// empty engine: Spawn of an unregistered image fails with
// [hypervisor.ErrImageNotFound].
//
// A Fake's instances never start by themselves and never die unless told to:
// [Fake.Crash] simulates a process exit and [Fake.WriteConsole] simulates
// console output. CPU time is simulated as one CPU kept busy while the
// instance runs (not while it is paused or stopped).
//
// The zero value is not usable; create Fakes with [NewFake]. A Fake is safe
// for concurrent use.
type Fake struct {
	opts    fakeOptions
	locks   keymutex.Mutex
	created time.Time

	closeOnce sync.Once
	closing   chan struct{} // closed by Close

	mu        sync.Mutex // guards everything below
	closed    bool
	instances map[string]*fakeInstance
	images    map[string]bool
	subs      map[*subscriber]struct{}
	nextPID   int
	agent     fakeAgent // the AgentDriver part; see fake_agent.go
}

var _ hypervisor.AgentDriver = (*Fake)(nil)

type fakeInstance struct {
	inst    hypervisor.Instance // State, PID, StartedAt, ExitCode are live
	console []consoleChunk
	vifs    []network.VIF
	extra   fakeInstanceExtra // see fake_agent.go

	guest    fakeGuest     // boot data, config drive, console input (fake_guest.go)
	cpuAcc   time.Duration // CPU time of the current run before runSince
	runSince time.Time     // when the instance last started or unpaused; zero unless running
}

type consoleChunk struct {
	t    time.Time
	data []byte
}

// FakeOption configures a [Fake].
type FakeOption func(*fakeOptions)

type fakeOptions struct {
	images   []string
	snapshot image.Writer
	now      func() time.Time
	latency  time.Duration
	hostname string
	vcpus    int
	memoryMB int64
	diskGB   int64
	agent    fakeAgentOptions // see fake_agent.go
	// locked, if not nil, is called by every per-instance call once it
	// holds the instance's lock, before the latency (a hook of this
	// package's tests: export_test.go).
	locked func(id string)
}

// WithImages registers image references that Spawn accepts, as
// [Fake.AddImage] does.
func WithImages(refs ...string) FakeOption {
	return func(o *fakeOptions) { o.images = append(o.images, refs...) }
}

// WithSnapshotStore makes Snapshot work: it writes a small tar archive
// describing the instance to w and returns the stored metadata. Without it,
// Snapshot returns an error wrapping [hypervisor.ErrNotSupported] and
// Capabilities().Snapshot is false.
func WithSnapshotStore(w image.Writer) FakeOption {
	return func(o *fakeOptions) { o.snapshot = w }
}

// WithClock replaces time.Now, for tests that control time (event times,
// console timestamps, CPU time, uptime). now must be safe for concurrent
// use.
func WithClock(now func() time.Time) FakeOption {
	return func(o *fakeOptions) { o.now = now }
}

// WithLatency makes every operation on an instance take d while it holds
// the instance's lock, as a real engine would. A call whose context ends
// during that time returns the context's error and changes nothing.
func WithLatency(d time.Duration) FakeOption {
	return func(o *fakeOptions) { o.latency = d }
}

// WithHost sets the simulated host: its name (also the only node of
// AvailableNodes), CPUs, memory in MiB and disk in GiB. Zero values keep
// the defaults (DefaultFakeHostname and so on).
func WithHost(hostname string, vcpus int, memoryMB, diskGB int64) FakeOption {
	return func(o *fakeOptions) {
		if hostname != "" {
			o.hostname = hostname
		}
		if vcpus > 0 {
			o.vcpus = vcpus
		}
		if memoryMB > 0 {
			o.memoryMB = memoryMB
		}
		if diskGB > 0 {
			o.diskGB = diskGB
		}
	}
}

// NewFake returns an empty Fake with no instances and, unless [WithImages]
// is given, no images.
func NewFake(opts ...FakeOption) *Fake {
	o := fakeOptions{
		now:      time.Now,
		hostname: DefaultFakeHostname,
		vcpus:    DefaultFakeVCPUs,
		memoryMB: DefaultFakeMemoryMB,
		diskGB:   DefaultFakeDiskGB,
	}
	for _, opt := range opts {
		opt(&o)
	}
	f := &Fake{
		opts:      o,
		closing:   make(chan struct{}),
		instances: make(map[string]*fakeInstance),
		images:    make(map[string]bool),
		subs:      make(map[*subscriber]struct{}),
		nextPID:   1000,
	}
	f.created = f.now()
	f.initAgent()
	for _, ref := range o.images {
		f.images[ref] = true
	}
	return f
}

func (f *Fake) now() time.Time { return f.opts.now() }

// AddImage registers image references that Spawn accepts.
func (f *Fake) AddImage(refs ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, r := range refs {
		f.images[r] = true
	}
}

// RemoveImage forgets an image reference. Instances spawned from it keep
// running.
func (f *Fake) RemoveImage(ref string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.images, ref)
}

// Capabilities reports what the Fake can do: everything, except Snapshot
// without [WithSnapshotStore]. It has no image store.
func (f *Fake) Capabilities() hypervisor.Capabilities {
	return hypervisor.Capabilities{
		Pause:         true,
		Reboot:        true,
		SoftDelete:    true,
		Snapshot:      f.opts.snapshot != nil,
		ImageStore:    false,
		VIFs:          true,
		HotplugVIF:    true,
		HostResources: true,
		InstanceStats: true,
		Events:        true,

		Exec:           true,
		ConsoleAttach:  true,
		ConfigDrive:    true,
		MetadataUpdate: true,
		AuthorizedKeys: true,
	}
}

// Close ends every event stream with an error wrapping
// [hypervisor.ErrUnavailable]; later calls fail with such an error too.
// Instances are kept. Close is idempotent and returns nil.
func (f *Fake) Close() error {
	f.closeOnce.Do(func() {
		f.mu.Lock()
		f.closed = true
		f.mu.Unlock()
		close(f.closing)
	})
	return nil
}

func errUnavailable() error { return fmt.Errorf("%w: %w", hypervisor.ErrUnavailable, errClosed) }

func errNotFound(id string) error {
	return fmt.Errorf("%w: no instance %q", hypervisor.ErrNotFound, id)
}

// begin does what every per-instance call starts with: validate the ID,
// check Close and ctx, take the instance's lock and wait the latency. The
// caller runs unlock.
func (f *Fake) begin(ctx context.Context, id string) (unlock func(), err error) {
	if err := hypervisor.ValidateID(id); err != nil {
		return nil, err
	}
	if f.isClosed() {
		return nil, errUnavailable()
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	unlock, err = f.locks.Lock(ctx, id)
	if err != nil {
		return nil, err
	}
	if f.opts.locked != nil {
		f.opts.locked(id)
	}
	if f.opts.latency > 0 {
		t := time.NewTimer(f.opts.latency)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			unlock()
			return nil, ctx.Err()
		}
	}
	return unlock, nil
}

func (f *Fake) isClosed() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.closed
}

// with runs fn on the instance id under the instance's lock and f.mu.
func (f *Fake) with(ctx context.Context, op, id string, fn func(fi *fakeInstance) error) error {
	unlock, err := f.begin(ctx, id)
	if err != nil {
		return hypervisor.WrapOp(op, id, err)
	}
	defer unlock()
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return hypervisor.WrapOp(op, id, errUnavailable())
	}
	fi := f.instances[id]
	if fi == nil {
		return hypervisor.WrapOp(op, id, errNotFound(id))
	}
	f.agent.op = op
	return hypervisor.WrapOp(op, id, fn(fi))
}

// transition applies op's row of the state table (package hypervisor):
// nil if it is a no-op in fi's state, a *StateError if op is not valid
// there, and do otherwise.
func transition(op hypervisor.Operation, fi *fakeInstance, do func()) error {
	act, err := op.Check(fi.inst.ID, fi.inst.State)
	if act {
		do()
	}
	return err
}

// stHasProcess are the states with a running or frozen process.
var stHasProcess = []hypervisor.State{hypervisor.StateRunning, hypervisor.StatePaused}

// start starts fi's process: a new PID and a new run; its VIFs stay
// plugged.
// Caller holds f.mu.
func (f *Fake) start(fi *fakeInstance) {
	now := f.now()
	f.nextPID++
	fi.inst.State = hypervisor.StateRunning
	fi.inst.PID = f.nextPID
	fi.inst.StartedAt = now
	fi.inst.ExitCode = 0
	fi.cpuAcc = 0
	fi.runSince = now
	fi.extra.intentRunning = true
	f.emit(hypervisor.Event{Type: hypervisor.EventStarted, ID: fi.inst.ID, Time: now})
}

// stop ends fi's process, if it has one, leaving it in state to. Caller
// holds f.mu.
func (f *Fake) stop(fi *fakeInstance, to hypervisor.State, exitCode int) {
	hadProcess := slices.Contains(stHasProcess, fi.inst.State)
	fi.inst.State = to
	fi.extra.snapshotPaused = false
	if !f.involuntary() {
		fi.extra.intentRunning = false
	}
	if !hadProcess {
		return
	}
	fi.inst.PID = 0
	fi.inst.ExitCode = exitCode
	fi.cpuAcc = 0
	fi.runSince = time.Time{}
	typ := hypervisor.EventStopped
	if to == hypervisor.StateCrashed {
		typ = hypervisor.EventCrashed
	}
	f.emit(hypervisor.Event{Type: typ, ID: fi.inst.ID, Time: f.now(), ExitCode: exitCode})
}

// Spawn creates and starts an instance. See [hypervisor.Lifecycle].
func (f *Fake) Spawn(ctx context.Context, spec hypervisor.InstanceSpec) (hypervisor.Instance, error) {
	return f.SpawnWithOptions(ctx, spec, hypervisor.SpawnOptions{})
}

// SpawnWithOptions is Spawn; with opts.CreateOnly the instance is left
// created. See [hypervisor.Creator].
func (f *Fake) SpawnWithOptions(ctx context.Context, spec hypervisor.InstanceSpec, opts hypervisor.SpawnOptions) (hypervisor.Instance, error) {
	const op = "spawn"
	if err := spec.Validate(); err != nil {
		return hypervisor.Instance{}, hypervisor.WrapOp(op, spec.ID, err)
	}
	if err := bootdata.Validate(spec); err != nil {
		return hypervisor.Instance{}, hypervisor.WrapOp(op, spec.ID, err)
	}
	unlock, err := f.begin(ctx, spec.ID)
	if err != nil {
		return hypervisor.Instance{}, hypervisor.WrapOp(op, spec.ID, err)
	}
	defer unlock()
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return hypervisor.Instance{}, hypervisor.WrapOp(op, spec.ID, errUnavailable())
	}
	if f.instances[spec.ID] != nil {
		return hypervisor.Instance{}, hypervisor.WrapOp(op, spec.ID, fmt.Errorf("%w: %q", hypervisor.ErrAlreadyExists, spec.ID))
	}
	f.agent.op = op
	if !f.images[spec.Image] && !f.fetchFromStore(spec.Image) {
		return hypervisor.Instance{}, hypervisor.WrapOp(op, spec.ID, fmt.Errorf("%w: %q is not registered with the fake", hypervisor.ErrImageNotFound, spec.Image))
	}
	fi := &fakeInstance{inst: hypervisor.Instance{
		ID:        spec.ID,
		Name:      spec.Hostname(),
		Image:     spec.Image,
		BackendID: randomHex(32),
		State:     hypervisor.StateCreated,
		VCPUs:     spec.EffectiveVCPUs(),
		MemoryMB:  spec.MemoryMB,
		CreatedAt: f.now(),
		Labels:    maps.Clone(spec.Labels),
		Metadata:  maps.Clone(spec.Metadata),
	}, vifs: hypervisor.CloneVIFs(spec.VIFs)}
	if err := fi.guest.init(spec); err != nil {
		return hypervisor.Instance{}, hypervisor.WrapOp(op, spec.ID, err)
	}
	fi.extra.hardCPU = spec.HardCPULimit
	f.instances[spec.ID] = fi
	f.touchImage(spec.Image)
	if opts.CreateOnly {
		return fi.snapshotInstance(), nil
	}
	f.start(fi)
	return fi.snapshotInstance(), nil
}

// snapshotInstance returns a copy of the instance that shares no maps.
func (fi *fakeInstance) snapshotInstance() hypervisor.Instance {
	inst := fi.inst
	inst.Labels = maps.Clone(fi.inst.Labels)
	inst.Metadata = maps.Clone(fi.inst.Metadata)
	inst.VIFs = hypervisor.CloneVIFs(fi.vifs)
	return inst
}

// Destroy stops and removes an instance; nil if it does not exist.
func (f *Fake) Destroy(ctx context.Context, id string) error {
	const op = "destroy"
	unlock, err := f.begin(ctx, id)
	if err != nil {
		return hypervisor.WrapOp(op, id, err)
	}
	defer unlock()
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return hypervisor.WrapOp(op, id, errUnavailable())
	}
	fi := f.instances[id]
	delete(f.agent.orphans, id)
	if fi == nil {
		return nil
	}
	f.agent.op = op
	f.stop(fi, hypervisor.StateShutdown, 0)
	delete(f.instances, id)
	f.emit(hypervisor.Event{Type: hypervisor.EventDestroyed, ID: id, Time: f.now()})
	return nil
}

// SoftDelete stops an instance and marks it soft-deleted.
func (f *Fake) SoftDelete(ctx context.Context, id string) error {
	const op = "soft-delete"
	return f.with(ctx, op, id, func(fi *fakeInstance) error {
		return transition(hypervisor.OpSoftDelete, fi, func() {
			f.stop(fi, hypervisor.StateSoftDeleted, 0)
			f.emit(hypervisor.Event{Type: hypervisor.EventSoftDeleted, ID: id, Time: f.now()})
		})
	})
}

// Restore brings a soft-deleted instance back, running.
func (f *Fake) Restore(ctx context.Context, id string) error {
	const op = "restore"
	return f.with(ctx, op, id, func(fi *fakeInstance) error {
		return transition(hypervisor.OpRestore, fi, func() {
			f.start(fi)
			f.emit(hypervisor.Event{Type: hypervisor.EventRestored, ID: id, Time: f.now()})
		})
	})
}

// Reboot restarts an instance, softly or hard.
func (f *Fake) Reboot(ctx context.Context, id string, opts hypervisor.RebootOptions) error {
	const op = "reboot"
	row := hypervisor.OpRebootSoft
	if opts.Hard {
		row = hypervisor.OpRebootHard
	}
	return f.with(ctx, op, id, func(fi *fakeInstance) error {
		return transition(row, fi, func() {
			f.stop(fi, hypervisor.StateShutdown, 0)
			f.start(fi)
			f.emit(hypervisor.Event{Type: hypervisor.EventRebooted, ID: id, Time: f.now()})
		})
	})
}

// PowerOff stops an instance; nil if it is stopped already.
func (f *Fake) PowerOff(ctx context.Context, id string, opts hypervisor.StopOptions) error {
	const op = "power-off"
	code := 0 // the guest stops on the graceful signal
	if opts.Timeout < 0 {
		code = 128 + 9 // killed at once
	}
	return f.with(ctx, op, id, func(fi *fakeInstance) error {
		return transition(hypervisor.OpPowerOff, fi, func() {
			f.stop(fi, hypervisor.StateShutdown, code)
		})
	})
}

// PowerOn starts a shut-down or crashed instance; nil if it runs.
func (f *Fake) PowerOn(ctx context.Context, id string) error {
	const op = "power-on"
	return f.with(ctx, op, id, func(fi *fakeInstance) error {
		return transition(hypervisor.OpPowerOn, fi, func() { f.start(fi) })
	})
}

// Pause freezes a running instance; nil if it is paused.
func (f *Fake) Pause(ctx context.Context, id string) error {
	const op = "pause"
	return f.with(ctx, op, id, func(fi *fakeInstance) error {
		return transition(hypervisor.OpPause, fi, func() {
			now := f.now()
			fi.cpuAcc += now.Sub(fi.runSince)
			fi.runSince = time.Time{}
			fi.inst.State = hypervisor.StatePaused
			f.emit(hypervisor.Event{Type: hypervisor.EventPaused, ID: id, Time: now})
		})
	})
}

// Unpause thaws a paused instance; nil if it runs.
func (f *Fake) Unpause(ctx context.Context, id string) error {
	const op = "unpause"
	return f.with(ctx, op, id, func(fi *fakeInstance) error {
		return transition(hypervisor.OpUnpause, fi, func() {
			now := f.now()
			fi.extra.snapshotPaused = false
			fi.runSince = now
			fi.inst.State = hypervisor.StateRunning
			f.emit(hypervisor.Event{Type: hypervisor.EventUnpaused, ID: id, Time: now})
		})
	})
}

// cpuTime returns the CPU time of the current run. Caller holds f.mu.
func (f *Fake) cpuTime(fi *fakeInstance) time.Duration {
	t := fi.cpuAcc
	if !fi.runSince.IsZero() {
		t += f.now().Sub(fi.runSince)
	}
	return max(t, 0)
}

// memory returns the memory use and limit of fi in bytes. Caller holds f.mu.
func (f *Fake) memory(fi *fakeInstance) (used, limit uint64) {
	limit = uint64(f.opts.memoryMB) << 20
	if fi.inst.MemoryMB > 0 {
		limit = uint64(fi.inst.MemoryMB) << 20
	}
	if slices.Contains(stHasProcess, fi.inst.State) {
		used = min(fakeMemoryUseBytes, limit)
	}
	return used, limit
}

// Info returns the instance with its simulated resource usage.
func (f *Fake) Info(ctx context.Context, id string) (hypervisor.InstanceInfo, error) {
	var info hypervisor.InstanceInfo
	err := f.with(ctx, "info", id, func(fi *fakeInstance) error {
		info.Instance = fi.snapshotInstance()
		info.MemoryBytes, info.MaxMemoryBytes = f.memory(fi)
		info.CPUTime = f.cpuTime(fi)
		return nil
	})
	return info, err
}

// List returns the instances that match opts, sorted by ID.
func (f *Fake) List(ctx context.Context, opts hypervisor.ListOptions) ([]hypervisor.Instance, error) {
	const op = "list"
	if err := ctx.Err(); err != nil {
		return nil, hypervisor.WrapOp(op, "", err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return nil, hypervisor.WrapOp(op, "", errUnavailable())
	}
	var out []hypervisor.Instance
	for _, fi := range f.instances {
		if len(opts.States) > 0 && !slices.Contains(opts.States, fi.inst.State) {
			continue
		}
		if !hasLabels(fi.inst.Labels, opts.Labels) {
			continue
		}
		out = append(out, fi.snapshotInstance())
	}
	slices.SortFunc(out, func(a, b hypervisor.Instance) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

func hasLabels(have, want map[string]string) bool {
	for k, v := range want {
		if hv, ok := have[k]; !ok || hv != v {
			return false
		}
	}
	return true
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return hex.EncodeToString(b)
}
