//go:build linux

package novanetwork

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/dockervisor/dockervisor/internal/undo"
	"github.com/dockervisor/dockervisor/network"
	"github.com/dockervisor/dockervisor/network/internal/brport"
	"github.com/dockervisor/dockervisor/network/internal/linkutil"
)

// Option configures a Driver.
type Option func(*options) error

type options struct {
	hostNetNS  string
	log        *slog.Logger
	attachHook func(context.Context, network.VIF, network.Target) error
}

// WithHostNetNS puts the host side (bridges, VLAN devices, taps) in the
// network namespace at path instead of the process's own.
func WithHostNetNS(path string) Option {
	return func(o *options) error {
		if path == "" {
			return fmt.Errorf("novanetwork: empty host namespace path")
		}
		o.hostNetNS = path
		return nil
	}
}

// WithLogger sets the logger (default: discard). The driver logs at Debug
// only.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) error {
		if l == nil {
			return fmt.Errorf("novanetwork: nil logger")
		}
		o.log = l
		return nil
	}
}

// WithAttachHook is a test hook: f runs during Attach after the veth exists
// and before the guest end is configured. An error from f fails the Attach.
func WithAttachHook(f func(ctx context.Context, vif network.VIF, target network.Target) error) Option {
	return func(o *options) error {
		o.attachHook = f
		return nil
	}
}

// Driver plugs nova-network VIFs.
type Driver struct {
	core *brport.Core
}

var _ network.VIFDriver = (*Driver)(nil)

// New returns a Driver. It does no I/O.
func New(opts ...Option) (*Driver, error) {
	o := options{log: slog.New(slog.DiscardHandler)}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	return &Driver{core: &brport.Core{HostNetNS: o.hostNetNS, Log: o.log, AttachHook: o.attachHook}}, nil
}

// VLANDeviceName is the name of the VLAN device of VLAN id, as Nova names
// it ("vlan100").
func VLANDeviceName(id int) string { return fmt.Sprintf("vlan%d", id) }

func check(vif network.VIF) error {
	if err := vif.Validate(); err != nil {
		return err
	}
	if vif.Type != network.VIFTypeBridge {
		return fmt.Errorf("%w: novanetwork cannot plug %q (port %s)", network.ErrUnsupportedVIFType, vif.Type, vif.ID)
	}
	if vif.Bridge == "" {
		return fmt.Errorf("%w %s: no bridge", network.ErrInvalidVIF, vif.ID)
	}
	if vif.VLAN != 0 && vif.BridgeInterface == "" {
		return fmt.Errorf("%w %s: VLAN %d without a bridge_interface to carry it", network.ErrInvalidVIF, vif.ID, vif.VLAN)
	}
	return nil
}

// uplink returns the name of the device that connects vif's bridge to the
// outside: the VLAN device in VLAN mode, else bridge_interface ("": none).
func uplink(vif network.VIF) string {
	if vif.VLAN != 0 {
		return VLANDeviceName(vif.VLAN)
	}
	return vif.BridgeInterface
}

// Plug creates the VLAN device (VLAN mode), the bridge and the uplink's
// enslavement, as needed. A failed Plug removes what it created.
func (d *Driver) Plug(ctx context.Context, instanceID string, vif network.VIF) (err error) {
	if err := check(vif); err != nil {
		return err
	}
	host, err := d.core.Host()
	if err != nil {
		return err
	}
	unlock, err := d.core.LockBridge(ctx, vif.Bridge)
	if err != nil {
		return err
	}
	defer unlock()

	u := undo.Stack{Log: d.core.Log, Op: "novanetwork: plug", ID: instanceID}
	defer func() { err = u.Fail(ctx, err) }()
	var up netlink.Link
	if vif.BridgeInterface != "" {
		parent, err := host.Link(vif.BridgeInterface)
		if err != nil {
			return err
		}
		if parent == nil {
			return fmt.Errorf("%w %s: bridge_interface %s does not exist in %s", network.ErrInvalidVIF, vif.ID, vif.BridgeInterface, host.Path())
		}
		up = parent
		if vif.VLAN != 0 {
			if up, err = d.ensureVLAN(host, &u, parent, vif); err != nil {
				return err
			}
		}
	}
	br, created, err := d.core.EnsureBridge(host, vif.Bridge, vif.MTU)
	if err != nil {
		return err
	}
	if created {
		u.Push(func(context.Context) error { return host.DeleteLink(vif.Bridge) })
	}
	if up == nil {
		return nil
	}
	switch m := up.Attrs().MasterIndex; {
	case m == br.Attrs().Index:
	case m != 0:
		return fmt.Errorf("%w: %s is already a port of another bridge", network.ErrDeviceConflict, up.Attrs().Name)
	default:
		u.Push(func(context.Context) error { return host.Handle().LinkSetNoMaster(up) })
		if err := host.Handle().LinkSetMaster(up, br); err != nil {
			return fmt.Errorf("novanetwork: enslave %s to %s: %w", up.Attrs().Name, vif.Bridge, err)
		}
	}
	if up.Attrs().Flags&net.FlagUp == 0 {
		if err := host.Handle().LinkSetUp(up); err != nil {
			return fmt.Errorf("novanetwork: set %s up: %w", up.Attrs().Name, err)
		}
	}
	u.Release()
	return nil
}

// ensureVLAN returns the VLAN device of vif on parent, creating it (marked
// as ours, with an undo on u) if needed.
func (d *Driver) ensureVLAN(host *linkutil.NS, u *undo.Stack, parent netlink.Link, vif network.VIF) (netlink.Link, error) {
	name := VLANDeviceName(vif.VLAN)
	l, err := host.Link(name)
	if err != nil {
		return nil, err
	}
	if l != nil {
		v, ok := l.(*netlink.Vlan)
		if !ok || v.VlanId != vif.VLAN || v.ParentIndex != parent.Attrs().Index {
			return nil, fmt.Errorf("%w: %s exists and is not VLAN %d on %s", network.ErrDeviceConflict, name, vif.VLAN, vif.BridgeInterface)
		}
		return v, nil
	}
	v := &netlink.Vlan{LinkAttrs: netlink.LinkAttrs{Name: name, ParentIndex: parent.Attrs().Index, MTU: vif.MTU, TxQLen: -1}, VlanId: vif.VLAN}
	if err := host.Handle().LinkAdd(v); err != nil {
		if errors.Is(err, unix.EOPNOTSUPP) {
			return nil, &network.KernelFeatureError{Feature: "802.1Q VLAN devices", Config: "CONFIG_VLAN_8021Q", Err: err}
		}
		return nil, fmt.Errorf("novanetwork: create %s on %s: %w", name, vif.BridgeInterface, err)
	}
	u.Push(func(context.Context) error { return host.DeleteLink(name) })
	if err := host.Handle().LinkSetAlias(v, linkutil.OwnerAlias); err != nil {
		return nil, fmt.Errorf("novanetwork: mark %s: %w", name, err)
	}
	return host.Link(name)
}

// Close releases the driver's handle of the host namespace. It does not
// unplug anything. It is idempotent.
func (d *Driver) Close() error { return d.core.Close() }

// Attach creates vif's veth, host end on the bridge and guest end as
// target.IfName in target's namespace, and configures the guest end.
func (d *Driver) Attach(ctx context.Context, instanceID string, vif network.VIF, target network.Target) error {
	if err := check(vif); err != nil {
		return err
	}
	return d.core.Attach(ctx, vif, target)
}

// Detach deletes vif's veth (both ends). Gone is success.
func (d *Driver) Detach(ctx context.Context, instanceID string, vif network.VIF, target network.Target) error {
	return d.core.Detach(ctx, vif)
}

// Unplug deletes vif's tap; once no other port is left on a bridge this
// module created, it deletes the bridge (releasing the uplink) and the
// VLAN device it created. Gone is success.
func (d *Driver) Unplug(ctx context.Context, instanceID string, vif network.VIF) error {
	if _, err := network.DeviceNames(vif.ID); err != nil {
		return err
	}
	if vif.Bridge != "" {
		if err := network.ValidateDeviceName(vif.Bridge); err != nil {
			return err
		}
	}
	upName := uplink(vif)
	ignore := func(l netlink.Link) bool { return upName != "" && l.Attrs().Name == upName }
	return d.core.Unplug(ctx, vif, ignore, func(host *linkutil.NS) error {
		if vif.VLAN == 0 {
			return nil
		}
		l, err := host.Link(upName)
		if err != nil || l == nil || !linkutil.Owned(l.Attrs().Alias) {
			return err
		}
		return host.DeleteLink(upName)
	})
}
