//go:build linux

package brport

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"

	"github.com/vishvananda/netlink"

	"github.com/dockervisor/dockervisor/internal/keymutex"
	"github.com/dockervisor/dockervisor/internal/undo"
	"github.com/dockervisor/dockervisor/network"
	"github.com/dockervisor/dockervisor/network/internal/linkutil"
)

// Uplink is how a driver connects its bridges to the outside (nova-network's
// bridge_interface and VLAN devices). Its methods run with the bridge's
// lock held.
type Uplink interface {
	// Ensure returns the device to enslave to vif's bridge (nil: none),
	// creating what it needs and registering the undo of each creation on
	// u. It runs before the bridge is ensured.
	Ensure(host *linkutil.NS, u *undo.Stack, vif network.VIF) (netlink.Link, error)
	// Name returns the name of vif's uplink device ("": none), a port that
	// does not keep the bridge in use.
	Name(vif network.VIF) string
	// Release runs before vif's bridge, which the driver created, is
	// deleted: it deletes what Ensure created.
	Release(host *linkutil.NS, vif network.VIF) error
}

// Core plugs VIFs as ports of Linux bridges; see [New].
type Core struct {
	driver     string
	check      func(network.VIF) error
	uplink     Uplink
	hostNetNS  string
	log        *slog.Logger
	attachHook AttachHook

	locks keymutex.Mutex

	mu     sync.Mutex
	host   *linkutil.NS
	stale  []*linkutil.NS
	closed bool
}

// Host returns the host namespace, opened on first use and kept open (its
// netlink handle is safe for concurrent use). If its path now names
// another namespace (a named namespace deleted and made again), it is
// opened again. The caller must not close it; Close does.
func (c *Core) Host() (*linkutil.NS, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, fmt.Errorf("%w: driver closed", network.ErrUnavailable)
	}
	if c.host != nil {
		if c.host.Alive() == nil {
			return c.host, nil
		}
		// Other calls may still use it: close it with the Core.
		c.stale = append(c.stale, c.host)
		c.host = nil
	}
	ns, err := linkutil.Open(c.hostNetNS)
	if err != nil {
		return nil, fmt.Errorf("host namespace: %w", err)
	}
	c.host = ns
	return ns, nil
}

// Close releases the host namespace. Calls after Close fail with
// [network.ErrUnavailable]. It is idempotent.
func (c *Core) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	var errs []error
	for _, ns := range append(c.stale, c.host) {
		errs = append(errs, ns.Close())
	}
	c.host, c.stale = nil, nil
	return errors.Join(errs...)
}

// lockBridge serialises changes to the ports of the bridge name.
func (c *Core) lockBridge(ctx context.Context, name string) (func(), error) {
	return c.locks.Lock(ctx, "bridge/"+name)
}

// BridgeOwner is the owner of the bridges (and other shared devices) the
// driver creates.
func (c *Core) BridgeOwner() network.DeviceOwner { return network.DeviceOwner{Driver: c.driver} }

// SharedMarks are the marks of a shared device the driver created: its
// owner's, and the alias earlier versions gave such devices.
func (c *Core) SharedMarks() []string {
	return []string{c.BridgeOwner().Mark(), linkutil.LegacyMark}
}

// PortOwner is the owner of the devices of vif of the instance instanceID.
func (c *Core) PortOwner(instanceID string, vif network.VIF) network.DeviceOwner {
	return network.DeviceOwner{Driver: c.driver, Instance: instanceID, Port: vif.ID}
}

// Plug ensures vif's bridge (and its uplink) in the host namespace. The
// tap name of vif must be free or carry vif's own mark: a device of that
// name that is someone else's (another instance's port with a clashing
// port ID, say) is [network.ErrDeviceConflict], before anything is
// created. A failed Plug removes what it created.
func (c *Core) Plug(ctx context.Context, instanceID string, vif network.VIF) error {
	if err := c.check(vif); err != nil {
		return err
	}
	names, err := network.DeviceNames(vif.ID)
	if err != nil {
		return err
	}
	host, err := c.Host()
	if err != nil {
		return err
	}
	host.SweepTempsLogged(ctx, c.log)
	if _, err := host.OwnedLink(names.Tap, c.PortOwner(instanceID, vif).Mark()); err != nil {
		return err
	}
	unlock, err := c.lockBridge(ctx, vif.Bridge)
	if err != nil {
		return err
	}
	defer unlock()
	_, err = c.plugLocked(ctx, host, vif)
	return err
}

// plugLocked ensures vif's uplink and bridge and enslaves the uplink; the
// caller holds the bridge's lock. On error it undoes what it did.
func (c *Core) plugLocked(ctx context.Context, host *linkutil.NS, vif network.VIF) (_ *netlink.Bridge, err error) {
	u := undo.Stack{Log: c.log, Op: "plug port", ID: vif.ID}
	defer func() { err = u.Fail(ctx, err) }()
	var up netlink.Link
	if c.uplink != nil {
		if up, err = c.uplink.Ensure(host, &u, vif); err != nil {
			return nil, err
		}
	}
	br, created, err := c.ensureBridge(host, vif.Bridge, vif.MTU)
	if err != nil {
		return nil, err
	}
	if created {
		marks := c.SharedMarks()
		u.Push(func(context.Context) error { _, err := host.DeleteOwned(vif.Bridge, marks...); return err })
	}
	if up != nil {
		switch m := up.Attrs().MasterIndex; {
		case m == br.Attrs().Index:
		case m != 0:
			return nil, fmt.Errorf("%w: %s is already a port of another bridge", network.ErrDeviceConflict, up.Attrs().Name)
		default:
			u.Push(func(context.Context) error { return host.Handle().LinkSetNoMaster(up) })
			if err := host.Handle().LinkSetMaster(up, br); err != nil {
				return nil, fmt.Errorf("%s: enslave %s to %s: %w", c.driver, up.Attrs().Name, vif.Bridge, err)
			}
		}
		if up.Attrs().Flags&net.FlagUp == 0 {
			if err := host.Handle().LinkSetUp(up); err != nil {
				return nil, fmt.Errorf("%s: set %s up: %w", c.driver, up.Attrs().Name, err)
			}
		}
	}
	u.Release()
	return br, nil
}

// ensureBridge creates the bridge (marked as the driver's) unless it
// exists; the caller holds its lock. An existing bridge that is the device
// of one port (a per-port bridge of the Open vSwitch driver, say) is not a
// network's bridge: [network.ErrDeviceConflict].
func (c *Core) ensureBridge(host *linkutil.NS, name string, mtu int) (*netlink.Bridge, bool, error) {
	br, created, err := host.EnsureBridge(linkutil.BridgeSpec{Name: name, MTU: mtu, Alias: c.BridgeOwner().Mark()})
	if err != nil {
		return nil, false, err
	}
	if created {
		c.log.Debug("created bridge", "bridge", name, "netns", host.Path())
		return br, true, nil
	}
	if o, ok := network.ParseDeviceMark(br.Attrs().Alias); ok && !o.Shared() {
		return nil, false, fmt.Errorf("%w: %s is the bridge of port %s of instance %s (%s), not a network's", network.ErrDeviceConflict, name, o.Port, o.Instance, o.Driver)
	}
	return br, false, nil
}

// Attach creates the veth of vif: its host end (the tap, marked as vif's)
// on vif.Bridge in the host namespace, its guest end as target.IfName in
// target's namespace, configured as vif says. A tap left from an earlier
// attach of the same VIF is replaced; a tap that is someone else's is
// [network.ErrDeviceConflict] and is left alone. On error nothing of this
// call is left.
func (c *Core) Attach(ctx context.Context, instanceID string, vif network.VIF, target network.Target) (err error) {
	if err := c.check(vif); err != nil {
		return err
	}
	if err := target.Validate(); err != nil {
		return err
	}
	names, err := network.DeviceNames(vif.ID)
	if err != nil {
		return err
	}
	host, err := c.Host()
	if err != nil {
		return err
	}
	guest, err := linkutil.Open(target.NetNS)
	if err != nil {
		return err
	}
	defer guest.Close()
	if guest.SameAs(host) {
		return fmt.Errorf("%w: %s is the host namespace", network.ErrInvalidTarget, target.NetNS)
	}
	mark := c.PortOwner(instanceID, vif).Mark()
	old, err := host.OwnedLink(names.Tap, mark)
	if err != nil {
		return err
	}
	unlock, err := c.lockBridge(ctx, vif.Bridge)
	if err != nil {
		return err
	}
	defer unlock()
	br, err := host.Link(vif.Bridge)
	if err != nil {
		return err
	}
	if br == nil {
		// Plugged, but the unplug of the bridge's last other port removed
		// it since: plug again.
		if br, err = c.plugLocked(ctx, host, vif); err != nil {
			return err
		}
	} else if _, ok := br.(*netlink.Bridge); !ok {
		return fmt.Errorf("%w: %s is a %s, not a bridge", network.ErrDeviceConflict, vif.Bridge, br.Type())
	}
	// An earlier attachment of this VIF is replaced: deleting its tap
	// deletes its guest end too.
	if old != nil {
		if err := host.DeleteByIndex(old); err != nil {
			return err
		}
	}
	if l, err := guest.Link(target.IfName); err != nil {
		return err
	} else if l != nil {
		return fmt.Errorf("%w: %s already exists in %s", network.ErrDeviceConflict, target.IfName, target.NetNS)
	}

	u := undo.Stack{Log: c.log, Op: "attach port", ID: vif.ID}
	defer func() { err = u.Fail(ctx, err) }()
	tap, err := host.AddVeth(linkutil.VethSpec{
		Name: names.Tap, MTU: vif.MTU, Alias: mark, Master: br.Attrs().Index,
		PeerName: target.IfName, PeerMAC: vif.Address.HardwareAddr(), PeerNS: guest,
	})
	if err != nil {
		return err
	}
	u.Push(func(context.Context) error { return host.DeleteByIndex(tap) })
	if c.attachHook != nil {
		if err := c.attachHook(ctx, vif, target); err != nil {
			return err
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	gl, err := guest.Link(target.IfName)
	if err == nil && gl == nil {
		err = fmt.Errorf("%w: %s vanished from %s", network.ErrNamespaceGone, target.IfName, target.NetNS)
	}
	if err == nil {
		err = guest.ConfigureGuest(gl, linkutil.GuestConfigFor(vif, target))
	}
	if aerr := guest.Alive(); aerr != nil {
		return aerr // the process died mid-attach: its namespace is gone
	}
	if err != nil {
		return err
	}
	c.log.Debug("attached", "port", vif.ID, "tap", names.Tap, "bridge", vif.Bridge, "netns", target.NetNS, "ifname", target.IfName)
	return nil
}

// Detach deletes vif's tap in the host namespace if it is this instance's
// and port's; its guest end goes with it. A tap that is gone, or someone
// else's, is success (the VIF has no attachment here).
func (c *Core) Detach(ctx context.Context, instanceID string, vif network.VIF) error {
	names, err := network.DeviceNames(vif.ID)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	host, err := c.Host()
	if err != nil {
		return err
	}
	_, err = host.DeleteOwned(names.Tap, c.PortOwner(instanceID, vif).Mark())
	return err
}

// Unplug deletes vif's tap if it is this instance's and port's, then
// vif.Bridge if the driver created it and no port other than its uplink is
// left on it (releasing the uplink first). A bridge made by someone else is
// never deleted, and neither is a device of another instance or port.
// Gone is success.
func (c *Core) Unplug(ctx context.Context, instanceID string, vif network.VIF) error {
	names, err := network.DeviceNames(vif.ID)
	if err != nil {
		return err
	}
	if vif.Bridge != "" {
		if err := network.ValidateDeviceName(vif.Bridge); err != nil {
			return err
		}
	}
	host, err := c.Host()
	if err != nil {
		return err
	}
	host.SweepTempsLogged(ctx, c.log)
	if _, err := host.DeleteOwned(names.Tap, c.PortOwner(instanceID, vif).Mark()); err != nil {
		return err
	}
	if vif.Bridge == "" {
		return nil
	}
	unlock, err := c.lockBridge(ctx, vif.Bridge)
	if err != nil {
		return err
	}
	defer unlock()
	br, err := host.OwnedLink(vif.Bridge, c.SharedMarks()...)
	if errors.Is(err, network.ErrDeviceConflict) {
		return nil // someone else's bridge: never deleted
	}
	if err != nil || br == nil {
		return err
	}
	if _, ok := br.(*netlink.Bridge); !ok {
		return nil
	}
	ports, err := host.Ports(br.Attrs().Index)
	if err != nil {
		return err
	}
	upName := ""
	if c.uplink != nil {
		upName = c.uplink.Name(vif)
	}
	for _, p := range ports {
		if upName == "" || p.Attrs().Name != upName {
			return nil // still in use
		}
	}
	if c.uplink != nil {
		if err := c.uplink.Release(host, vif); err != nil {
			return err
		}
	}
	c.log.Debug("deleting bridge", "bridge", vif.Bridge, "netns", host.Path())
	return host.DeleteByIndex(br)
}
