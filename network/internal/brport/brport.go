//go:build linux

package brport

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/vishvananda/netlink"

	"github.com/dockervisor/dockervisor/internal/keymutex"
	"github.com/dockervisor/dockervisor/internal/undo"
	"github.com/dockervisor/dockervisor/network"
	"github.com/dockervisor/dockervisor/network/internal/linkutil"
)

// Core plugs VIFs as ports of Linux bridges. Its zero value is not usable;
// set HostNetNS (may be "") and Log.
type Core struct {
	// HostNetNS is the path of the namespace of the host side; "" is the
	// process's own.
	HostNetNS string
	// Log receives debug messages.
	Log *slog.Logger
	// AttachHook, if set, runs during Attach after the veth exists and
	// before the guest end is configured (a test hook for faults such as
	// the instance dying mid-attach). An error from it fails the Attach.
	AttachHook func(ctx context.Context, vif network.VIF, target network.Target) error

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
	ns, err := linkutil.Open(c.HostNetNS)
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

// LockBridge serialises changes to the ports of the bridge name.
func (c *Core) LockBridge(ctx context.Context, name string) (func(), error) {
	return c.locks.Lock(ctx, "bridge/"+name)
}

// EnsureBridge creates the bridge (marked as ours) unless it exists; the
// caller holds its lock.
func (c *Core) EnsureBridge(host *linkutil.NS, name string, mtu int) (*netlink.Bridge, bool, error) {
	br, created, err := host.EnsureBridge(linkutil.BridgeSpec{Name: name, MTU: mtu, Alias: linkutil.OwnerAlias})
	if created {
		c.Log.Debug("created bridge", "bridge", name, "netns", host.Path())
	}
	return br, created, err
}

// Attach creates the veth of vif: its host end (the tap) on vif.Bridge in
// the host namespace, its guest end as target.IfName in target's
// namespace, configured as vif says. A tap left from an earlier attach is
// replaced. On error nothing of this call is left.
func (c *Core) Attach(ctx context.Context, vif network.VIF, target network.Target) (err error) {
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
	unlock, err := c.LockBridge(ctx, vif.Bridge)
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
		// it since: make it again.
		if br, _, err = c.EnsureBridge(host, vif.Bridge, vif.MTU); err != nil {
			return err
		}
	} else if _, ok := br.(*netlink.Bridge); !ok {
		return fmt.Errorf("%w: %s is a %s, not a bridge", network.ErrDeviceConflict, vif.Bridge, br.Type())
	}
	// An earlier attachment of this VIF is replaced: deleting its tap
	// deletes its guest end too.
	if err := host.DeleteLink(names.Tap); err != nil {
		return err
	}
	if l, err := guest.Link(target.IfName); err != nil {
		return err
	} else if l != nil {
		return fmt.Errorf("%w: %s already exists in %s", network.ErrDeviceConflict, target.IfName, target.NetNS)
	}

	u := undo.Stack{Log: c.Log, Op: "attach port", ID: vif.ID}
	defer func() { err = u.Fail(ctx, err) }()
	u.Push(func(context.Context) error { return host.DeleteLink(names.Tap) })
	if _, err := host.AddVeth(linkutil.VethSpec{
		Name: names.Tap, MTU: vif.MTU, Master: br.Attrs().Index,
		PeerName: target.IfName, PeerMAC: vif.Address.HardwareAddr(), PeerNS: guest,
	}); err != nil {
		return err
	}
	if c.AttachHook != nil {
		if err := c.AttachHook(ctx, vif, target); err != nil {
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
	c.Log.Debug("attached", "port", vif.ID, "tap", names.Tap, "bridge", vif.Bridge, "netns", target.NetNS, "ifname", target.IfName)
	return nil
}

// Detach deletes vif's tap in the host namespace; its guest end goes with
// it. A tap that is gone is success.
func (c *Core) Detach(ctx context.Context, vif network.VIF) error {
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
	return host.DeleteLink(names.Tap)
}

// Unplug deletes vif's tap, then vif.Bridge if this module created it and
// no port is left on it other than those ignore accepts (nil: none). A
// bridge made by someone else is never deleted. ours runs, with the
// bridge's lock held, before the bridge is deleted (nil: nothing).
func (c *Core) Unplug(ctx context.Context, vif network.VIF, ignore func(netlink.Link) bool, beforeDelete func(host *linkutil.NS) error) error {
	names, err := network.DeviceNames(vif.ID)
	if err != nil {
		return err
	}
	host, err := c.Host()
	if err != nil {
		return err
	}
	if err := host.DeleteLink(names.Tap); err != nil {
		return err
	}
	if vif.Bridge == "" {
		return nil
	}
	unlock, err := c.LockBridge(ctx, vif.Bridge)
	if err != nil {
		return err
	}
	defer unlock()
	br, err := host.Link(vif.Bridge)
	if err != nil || br == nil {
		return err
	}
	if _, ok := br.(*netlink.Bridge); !ok || !linkutil.Owned(br.Attrs().Alias) {
		return nil
	}
	ports, err := host.Ports(br.Attrs().Index)
	if err != nil {
		return err
	}
	for _, p := range ports {
		if ignore == nil || !ignore(p) {
			return nil // still in use
		}
	}
	if beforeDelete != nil {
		if err := beforeDelete(host); err != nil {
			return err
		}
	}
	c.Log.Debug("deleting bridge", "bridge", vif.Bridge, "netns", host.Path())
	return host.DeleteLink(vif.Bridge)
}
