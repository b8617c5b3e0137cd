package docker

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/dockervisor/dockervisor/hypervisor"
	"github.com/dockervisor/dockervisor/internal/keymutex"
)

// Driver is the Docker backend of hypervisor.Driver: each instance is a
// container, created without an engine network (VIFs come from the VIF
// driver, see WithVIFDriver), limits from its flavor and its
// spawn-time spec in labels. It is safe for concurrent use.
type Driver struct {
	core
	lifecycleRoom
	recordRoom
	imageRoom
	hostRoom
	eventRoom
	guestRoom
	osRoom
	vifRoom
}

// core is what every room of the Driver shares: the options, the engine
// client, the state directory and the per-instance locks, with the
// helpers every operation starts with. Each room embeds a pointer to
// the Driver's one core, and reaches another room through the core's
// room fields.
type core struct {
	opts   options
	log    *slog.Logger
	state  *driverState
	locks  keymutex.Mutex // per instance ID
	ownAPI bool           // the Driver built the client and closes it
	api    APIClient
	conn   connState

	os       cgroupCache     // the engine host's cgroup version, for OS instances
	runtimes runtimeCheck    // the engine has the runtime of WithRuntime
	execs    executableCache // the init checks' answers, by image
	intents  stopIntents
	marks    snapshotMarks
	ops      opLog    // driver operations by container, for event reasons
	ooms     oomMarks // the engine's OOM events, for event reasons
	journal  *journal // the driver's own events (resize, reboot…), for replay
	host     hostState
	bulk     bulkState          // cgroup locations for AllInstanceStats
	fetches  singleflight.Group // image fetches, by store image version

	// postStart are the steps every start of an instance runs, in order,
	// once the engine has started its process (see startInstance).
	postStart []postStartStep
	// cleanupTimeout bounds each rollback step of a failed operation.
	cleanupTimeout time.Duration
	// owner names this Driver in the intent journals it writes (see
	// pending.go); born is when it was made: a temporary file of the
	// state directory older than that was left by an earlier process.
	owner opOwner
	born  time.Time

	// stepHook, when set (by tests in this package), sees each step of
	// Spawn and of the start path.
	stepHook func(step string)

	// The rooms, for the rooms that need much of another (see rooms.go
	// for the narrow views the others have).
	vifs    *vifRoom
	osInst  *osRoom
	guest   *guestRoom
	events  *eventRoom
	hosts   *hostRoom
	images  *imageRoom
	records *recordRoom
	life    *lifecycleRoom
}

// wire points the rooms at d's core and the core at the rooms; New and
// the tests that build a Driver from a literal call it.
func (d *Driver) wire() *Driver {
	c := &d.core
	c.vifs, c.osInst, c.guest, c.events = &d.vifRoom, &d.osRoom, &d.guestRoom, &d.eventRoom
	c.hosts, c.images, c.records, c.life = &d.hostRoom, &d.imageRoom, &d.recordRoom, &d.lifecycleRoom
	d.vifRoom = vifRoom{core: c, life: c.life, records: c.records, guest: c.guest, osInst: c.osInst}
	d.osRoom = osRoom{core: c, life: c.life, records: c.records, guest: c.guest, hosts: c.hosts}
	d.guestRoom = guestRoom{core: c, life: c.life, records: c.records}
	d.eventRoom = eventRoom{core: c, records: c.records, hosts: c.hosts}
	d.hostRoom = hostRoom{core: c, osInst: c.osInst}
	d.imageRoom = imageRoom{core: c, life: c.life}
	d.recordRoom = recordRoom{core: c, guest: c.guest, images: c.images, osInst: c.osInst}
	d.lifecycleRoom = lifecycleRoom{core: c}
	return d
}

// connState is the engine connection's state. Its mutex is never held
// across a call to the engine.
type connState struct {
	mu        sync.Mutex
	connected bool
	closed    bool
}

var _ hypervisor.AgentDriver = (*Driver)(nil)

// The steps of Spawn, in order. Each registers its undo before it runs, and
// a failure undoes the steps done so far in reverse order. StepStart and
// StepAttachVIFs are the start path's, which every start runs.
const (
	StepValidate    = "validate"
	StepEnsureImage = "ensure-image"
	StepCreate      = "create"
	StepPlugVIFs    = "plug-vifs"
	StepStart       = "start"
	StepAttachVIFs  = "attach-vifs"
)

// defaultCleanupTimeout bounds each rollback step, so that a hung engine
// cannot make a failed operation hang forever.
const defaultCleanupTimeout = 30 * time.Second

// New returns a Driver configured by opts. It does not dial: the first call
// that needs the engine pings it with API version negotiation, and fails
// with ErrUnavailable if the engine does not answer or its API is older
// than MinAPIVersion.
func New(opts ...Option) (*Driver, error) {
	o := options{
		labelPrefix: DefaultLabelPrefix,
		namePrefix:  DefaultNamePrefix,
		stateDir:    DefaultStateDir,
		stopTimeout: DefaultStopTimeout,
		logger:      slog.New(slog.DiscardHandler),
		eventBuffer: DefaultEventBuffer,
	}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, opErr("new", "", err)
		}
	}
	if o.ports != nil && o.vifs == nil {
		return nil, opErr("new", "", fmt.Errorf("%w: a port observer needs a VIF driver (WithVIFDriver)", hypervisor.ErrInvalidArgument))
	}
	st, err := openDriverState(o.stateDir, o.labelPrefix, o.namePrefix)
	if err != nil {
		return nil, opErr("new", "", err)
	}
	d := (&Driver{core: core{opts: o, log: o.logger, state: st, api: o.api, cleanupTimeout: defaultCleanupTimeout, born: time.Now()}}).wire()
	if d.journal, err = openJournal(st.scopeDir()); err != nil {
		return nil, opErr("new", "", err)
	}

	d.postStart = []postStartStep{
		{name: "record-start", run: d.recordStart},
		{name: "cgroup-gate", run: d.openCgroupGateStep},
		{name: StepAttachVIFs, run: d.attachVIFs},
	}
	if d.api == nil {
		c, err := newClient(&o)
		if err != nil {
			return nil, opErr("new", "", err)
		}
		d.api, d.ownAPI = c, true
	}
	d.owner = newOwner()
	if err := d.ops.open(st.scopeDir(), d.owner); err != nil {
		liveDrivers.Delete(d.owner.Driver)
		if d.ownAPI {
			_ = d.api.Close()
		}
		return nil, opErr("new", "", fmt.Errorf("operations file: %w", err))
	}
	return d, nil
}

// Capabilities reports what this Driver, as configured, can do. It does
// no I/O: OSInstances is false for a remote engine on a cgroup v2 host
// that predates writable cgroups (Docker 28), which is known once the
// Driver has read the engine's facts (HostFacts, HostResources and an
// OS instance's Spawn read them); such a Spawn fails with
// hypervisor.ErrNotSupported saying why.
func (d *Driver) Capabilities() hypervisor.Capabilities {
	return hypervisor.Capabilities{
		Pause:      true,
		Reboot:     true,
		SoftDelete: true,
		Events:     true,
		ImageStore: d.opts.images != nil,
		VIFs:       d.opts.vifs != nil,
		HotplugVIF: d.opts.vifs != nil,
		Snapshot:   d.snapshotWriter() != nil,

		HostResources: true,
		InstanceStats: true,

		Exec:           true,
		ConsoleAttach:  true,
		ConfigDrive:    true,
		MetadataUpdate: true,
		AuthorizedKeys: true,
		OSInstances:    !d.osKnownUnsupported(),
	}
}

// Close releases the engine connection. Instances keep running. Calls after
// Close fail with ErrUnavailable. Close is idempotent.
func (d *Driver) Close() error {
	d.conn.mu.Lock()
	closed := d.conn.closed
	d.conn.closed = true
	d.conn.mu.Unlock()
	liveDrivers.Delete(d.owner.Driver)
	if !closed {
		d.ops.close()
	}
	if closed || !d.ownAPI {
		return nil
	}
	return d.api.Close()
}

// lockInstance validates id, takes its lock and returns the engine client:
// the common start of every per-instance call. The caller runs unlock.
func (d *core) lockInstance(ctx context.Context, id string) (api APIClient, unlock func(), err error) {
	if err := hypervisor.ValidateID(id); err != nil {
		return nil, nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	unlock, err = d.locks.Lock(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	api, err = d.engine(ctx)
	if err != nil {
		unlock()
		return nil, nil, err
	}
	return api, unlock, nil
}

// cleanupContext returns the context of one rollback step: not cancelled
// when ctx is (a cancelled operation still cleans up), but bounded.
func (d *core) cleanupContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), d.cleanupTimeout)
}

func (d *core) step(name string) {
	if d.stepHook != nil {
		d.stepHook(name)
	}
}

func (d *core) containerName(id string) string { return d.opts.namePrefix + id }
