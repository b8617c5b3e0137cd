package ovs

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/dockervisor/dockervisor/network"
)

// DefaultBridge is the integration bridge used for a VIF that names none.
const DefaultBridge = "br-int"

// Driver is the Open vSwitch [network.VIFDriver]. It serves VIFs of type
// [network.VIFTypeOVS]: a VIF with HybridPlug set gets the hybrid plug
// (per-port Linux bridge qbrX, veth qvbX/qvoX, qvoX on the integration
// bridge), any other the direct plug (tapX on the integration bridge). X is
// the port ID's start, see [network.DeviceNames].
//
// A Driver is safe for concurrent use by several goroutines on different
// VIFs; callers serialise operations on one VIF (the hypervisor backend
// does, per instance).
type Driver struct {
	runner Runner
	look   lookuper
	bridge string
	hostNS string
	log    *slog.Logger
}

type options struct {
	runner  Runner
	db      string
	timeout time.Duration
	bridge  string
	hostNS  string
	log     *slog.Logger
}

// Option configures a [Driver].
type Option func(*options) error

// WithDB sets the Open vSwitch database, such as
// "unix:/run/openvswitch/db.sock" (ovs-vsctl --db). The driver changes the
// database with ovs-vsctl and reads interfaces over the same socket with
// OVSDB's JSON-RPC protocol (RFC 7047), for "unix:" and "tcp:" addresses;
// other kinds (such as "ssl:") are read with ovs-vsctl too. The default is
// ovs-vsctl's own, unix:$OVS_RUNDIR/db.sock (/var/run/openvswitch).
func WithDB(addr string) Option {
	return func(o *options) error {
		if addr == "" {
			return errors.New("ovs: WithDB: empty address")
		}
		o.db = addr
		return nil
	}
}

// WithTimeout bounds each ovs-vsctl command (ovs-vsctl --timeout, whole
// seconds) and each database read; the default is [DefaultTimeout]. A
// command or read that times out is [ErrUnavailable].
func WithTimeout(d time.Duration) Option {
	return func(o *options) error {
		if d <= 0 {
			return fmt.Errorf("ovs: WithTimeout: %v is not positive", d)
		}
		o.timeout = d
		return nil
	}
}

// WithIntegrationBridge sets the integration bridge for VIFs whose Bridge is
// empty; the default is [DefaultBridge]. The bridge must exist (the driver
// never creates or deletes it).
func WithIntegrationBridge(name string) Option {
	return func(o *options) error {
		if err := network.ValidateDeviceName(name); err != nil {
			return fmt.Errorf("ovs: WithIntegrationBridge: %w", err)
		}
		o.bridge = name
		return nil
	}
}

// WithHostNetNS puts the host side of every VIF (qbr, qvb, qvo, tap) in the
// network namespace at path (such as "/run/netns/host1") instead of the
// caller's own. ovs-vswitchd must run in that namespace too: either
// datapath opens port devices by name in ovs-vswitchd's own namespace.
func WithHostNetNS(path string) Option {
	return func(o *options) error {
		if path == "" {
			return errors.New("ovs: WithHostNetNS: empty path")
		}
		o.hostNS = path
		return nil
	}
}

// WithLogger sets the logger for debug messages; the default discards.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) error {
		if l == nil {
			return errors.New("ovs: WithLogger: nil logger")
		}
		o.log = l
		return nil
	}
}

// WithRunner replaces the ovs-vsctl runner; it is a test hook (a recording
// fake) and makes [WithDB] and [WithTimeout] moot: interfaces are then
// read through the runner too (ovs-vsctl find).
func WithRunner(r Runner) Option {
	return func(o *options) error {
		if r == nil {
			return errors.New("ovs: WithRunner: nil runner")
		}
		o.runner = r
		return nil
	}
}

// New returns a Driver. It does no I/O: a missing Open vSwitch shows on the
// first Plug as [ErrUnavailable].
func New(opts ...Option) (*Driver, error) {
	o := options{bridge: DefaultBridge, log: slog.New(slog.DiscardHandler)}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	r := o.runner
	var look lookuper
	if r == nil {
		r = Vsctl{DB: o.db, Timeout: o.timeout}
		db := o.db
		if db == "" {
			db = defaultDB()
		}
		if l, ok := newOVSDBLookup(db, o.timeout); ok {
			look = l
		}
	}
	if look == nil {
		look = runnerLookup{r}
	}
	return &Driver{runner: r, look: look, bridge: o.bridge, hostNS: o.hostNS, log: o.log}, nil
}

// integrationBridge is the bridge vif's port goes on.
func (d *Driver) integrationBridge(vif network.VIF) string {
	if vif.Bridge != "" {
		return vif.Bridge
	}
	return d.bridge
}

// spec is the port of vif for the instance instanceID.
func (d *Driver) spec(instanceID string, vif network.VIF, name string) portSpec {
	id := vif.OVSInterfaceID
	if id == "" {
		id = vif.ID
	}
	return portSpec{Bridge: d.integrationBridge(vif), Name: name, IfaceID: id, MAC: vif.Address.String(), VMUUID: instanceID}
}

// check validates vif for this driver and returns its device names.
func check(vif network.VIF) (network.Devices, error) {
	if err := vif.Validate(); err != nil {
		return network.Devices{}, err
	}
	if vif.Type != network.VIFTypeOVS {
		return network.Devices{}, fmt.Errorf("%w: ovs driver got VIF %s of type %q", network.ErrUnsupportedVIFType, vif.ID, vif.Type)
	}
	return network.DeviceNames(vif.ID)
}
