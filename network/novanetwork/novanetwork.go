//go:build linux

package novanetwork

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/dockervisor/dockervisor/internal/undo"
	"github.com/dockervisor/dockervisor/network"
	"github.com/dockervisor/dockervisor/network/internal/brport"
	"github.com/dockervisor/dockervisor/network/internal/linkutil"
)

// DriverName is the driver's name in the owner marks of the devices it
// creates (see [network.DeviceOwner]).
const DriverName = "novanetwork"

// Option configures a Driver.
type Option func(*options) error

type options = brport.Options

// WithHostNetNS puts the host side (bridges, VLAN devices, taps) in the
// network namespace at path instead of the process's own.
func WithHostNetNS(path string) Option { return Option(brport.WithHostNetNS(DriverName, path)) }

// WithLogger sets the logger (default: discard). The driver logs at Debug
// only.
func WithLogger(l *slog.Logger) Option { return Option(brport.WithLogger(DriverName, l)) }

// WithAttachHook is a test hook: f runs during Attach after the veth exists
// and before the guest end is configured. An error from f fails the Attach.
func WithAttachHook(f func(ctx context.Context, vif network.VIF, target network.Target) error) Option {
	return Option(brport.WithAttachHook(f))
}

// Driver plugs nova-network VIFs.
type Driver struct {
	core *brport.Core
}

var _ network.VIFDriver = (*Driver)(nil)

// New returns a Driver. It does no I/O.
func New(opts ...Option) (*Driver, error) {
	core, err := brport.New(DriverName, check, uplink{}, opts)
	if err != nil {
		return nil, err
	}
	return &Driver{core: core}, nil
}

// VLANDeviceName is the name of the VLAN device of VLAN id, as Nova names
// it ("vlan100").
func VLANDeviceName(id int) string { return fmt.Sprintf("vlan%d", id) }

func check(vif network.VIF) error {
	if err := brport.CheckBridgeVIF(DriverName, vif); err != nil {
		return err
	}
	if vif.VLAN != 0 && vif.BridgeInterface == "" {
		return fmt.Errorf("%w %s: VLAN %d without a bridge_interface to carry it", network.ErrInvalidVIF, vif.ID, vif.VLAN)
	}
	return nil
}

// uplink connects a bridge to bridge_interface, directly (flat) or through
// the VLAN device on it (VLAN mode).
type uplink struct{}

// Name is the device that connects vif's bridge to the outside: the VLAN
// device in VLAN mode, else bridge_interface ("": none).
func (uplink) Name(vif network.VIF) string {
	if vif.VLAN != 0 {
		return VLANDeviceName(vif.VLAN)
	}
	return vif.BridgeInterface
}

// Ensure checks bridge_interface and, in VLAN mode, ensures the VLAN
// device on it.
func (uplink) Ensure(host *linkutil.NS, u *undo.Stack, vif network.VIF) (netlink.Link, error) {
	if vif.BridgeInterface == "" {
		return nil, nil
	}
	parent, err := host.Link(vif.BridgeInterface)
	if err != nil {
		return nil, err
	}
	if parent == nil {
		return nil, fmt.Errorf("%w %s: bridge_interface %s does not exist in %s", network.ErrInvalidVIF, vif.ID, vif.BridgeInterface, host.Path())
	}
	if vif.VLAN == 0 {
		return parent, nil
	}
	return ensureVLAN(host, u, parent, vif)
}

// Release deletes the VLAN device of vif if this driver created it; a
// bridge_interface is released (by the bridge's deletion), never deleted.
func (uplink) Release(host *linkutil.NS, vif network.VIF) error {
	if vif.VLAN == 0 {
		return nil
	}
	_, err := host.DeleteOwned(VLANDeviceName(vif.VLAN), sharedMarks()...)
	return err
}

// sharedMarks are the marks of the bridges and VLAN devices this driver
// creates (and of those earlier versions created).
func sharedMarks() []string {
	return []string{network.DeviceOwner{Driver: DriverName}.Mark(), linkutil.LegacyMark}
}

// ensureVLAN returns the VLAN device of vif on parent, creating it (marked
// as this driver's, with an undo on u) if needed. An existing device of
// that name must be that VLAN on parent.
func ensureVLAN(host *linkutil.NS, u *undo.Stack, parent netlink.Link, vif network.VIF) (netlink.Link, error) {
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
	// Created down under a temporary name, marked, then named: a device
	// called vlanN never exists without its mark.
	tmp := linkutil.TempName()
	v := &netlink.Vlan{LinkAttrs: netlink.LinkAttrs{Name: tmp, ParentIndex: parent.Attrs().Index, MTU: vif.MTU, TxQLen: -1}, VlanId: vif.VLAN}
	if err := host.Handle().LinkAdd(v); err != nil {
		if errors.Is(err, unix.EOPNOTSUPP) {
			return nil, &network.KernelFeatureError{Feature: "802.1Q VLAN devices", Config: "CONFIG_VLAN_8021Q", Err: err}
		}
		return nil, fmt.Errorf("novanetwork: create %s on %s: %w", name, vif.BridgeInterface, err)
	}
	u.Push(func(context.Context) error { return host.DeleteByIndex(v) })
	if err := host.NameMarked(v.Index, name, sharedMarks()[0], false); err != nil {
		if errors.Is(err, unix.EEXIST) {
			return nil, fmt.Errorf("%w: %s was created by someone else meanwhile", network.ErrDeviceConflict, name)
		}
		return nil, fmt.Errorf("novanetwork: name %s: %w", name, err)
	}
	return host.Link(name)
}

// Close releases the driver's handle of the host namespace. It does not
// unplug anything. It is idempotent.
func (d *Driver) Close() error { return d.core.Close() }

// Plug creates the VLAN device (VLAN mode), the bridge and the uplink's
// enslavement, as needed. A device with vif's tap name that is not this
// instance's and port's is [network.ErrDeviceConflict], before anything is
// created. A failed Plug removes what it created.
func (d *Driver) Plug(ctx context.Context, instanceID string, vif network.VIF) error {
	return d.core.Plug(ctx, instanceID, vif)
}

// Attach creates vif's veth, host end on the bridge and guest end as
// target.IfName in target's namespace, and configures the guest end.
func (d *Driver) Attach(ctx context.Context, instanceID string, vif network.VIF, target network.Target) error {
	return d.core.Attach(ctx, instanceID, vif, target)
}

// Detach deletes vif's veth (both ends) if its tap is this instance's and
// port's. Gone is success.
func (d *Driver) Detach(ctx context.Context, instanceID string, vif network.VIF, target network.Target) error {
	return d.core.Detach(ctx, instanceID, vif)
}

// Unplug deletes vif's tap if it is this instance's and port's; once no
// other port is left on a bridge this driver created, it deletes the bridge
// (releasing the uplink) and the VLAN device it created. Gone is success.
func (d *Driver) Unplug(ctx context.Context, instanceID string, vif network.VIF) error {
	return d.core.Unplug(ctx, instanceID, vif)
}
