package docker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"golang.org/x/sync/singleflight"

	"github.com/dockervisor/dockervisor/hypervisor"
	"github.com/dockervisor/dockervisor/internal/keymutex"
)

// Driver is the Docker backend of hypervisor.Driver: each instance is a
// container, created with networking off, limits from its flavor and its
// spawn-time spec in labels. It is safe for concurrent use.
type Driver struct {
	opts   options
	log    *slog.Logger
	state  *stateStore
	locks  keymutex.Mutex
	ownAPI bool // the Driver built the client and closes it

	connMu     sync.Mutex
	api        APIClient
	connected  bool
	closed     bool
	apiVersion string

	intents stopIntents
	host    hostState
	fetches singleflight.Group // image fetches, by store image version

	// stepHook, when set (by tests in this package), sees each spawn step.
	stepHook func(step string)
}

var _ hypervisor.Driver = (*Driver)(nil)

// The steps of Spawn, in order. Each registers its undo before it runs, and
// a failure undoes the steps done so far in reverse order.
const (
	StepValidate    = "validate"
	StepEnsureImage = "ensure-image"
	StepCreate      = "create"
	StepPlugVIFs    = "plug-vifs"
	StepStart       = "start"
	StepAttachVIFs  = "attach-vifs"
)

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
	}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, opErr("new", "", err)
		}
	}
	st, err := newStateStore(o.stateDir)
	if err != nil {
		return nil, opErr("new", "", err)
	}
	d := &Driver{opts: o, log: o.logger, state: st, api: o.api}
	if d.api == nil {
		c, err := newClient(&o)
		if err != nil {
			return nil, opErr("new", "", err)
		}
		d.api, d.ownAPI = c, true
	}
	return d, nil
}

// Capabilities reports what this Driver, as configured, can do.
func (d *Driver) Capabilities() hypervisor.Capabilities {
	return hypervisor.Capabilities{
		Pause:      true,
		Reboot:     true,
		SoftDelete: true,
		Events:     true,
		ImageStore: d.opts.images != nil,

		HostResources: true,
		InstanceStats: true,

		Exec:           true,
		ConsoleAttach:  true,
		ConfigDrive:    true,
		MetadataUpdate: true,
		AuthorizedKeys: true,
	}
}

// Close releases the engine connection. Instances keep running. Calls after
// Close fail with ErrUnavailable. Close is idempotent.
func (d *Driver) Close() error {
	d.connMu.Lock()
	defer d.connMu.Unlock()
	if d.closed {
		return nil
	}
	d.closed = true
	if d.ownAPI {
		return d.api.Close()
	}
	return nil
}

// begin validates id, takes its lock and returns the engine client: the
// common start of every per-instance operation.
func (d *Driver) begin(ctx context.Context, id string) (APIClient, func(), error) {
	if err := hypervisor.ValidateID(id); err != nil {
		return nil, nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	unlock, err := d.locks.Lock(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	api, err := d.engine(ctx)
	if err != nil {
		unlock()
		return nil, nil, err
	}
	return api, unlock, nil
}

func (d *Driver) containerName(id string) string { return d.opts.namePrefix + id }

func notSupported(what string) error {
	return fmt.Errorf("%w: %s is not available in the Docker backend yet", hypervisor.ErrNotSupported, what)
}

var errNotOurs = errors.New("container was not created by this driver")
