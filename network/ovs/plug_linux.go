package ovs

import (
	"context"
	"errors"
	"fmt"

	"github.com/vishvananda/netlink"

	"github.com/dockervisor/dockervisor/internal/undo"
	"github.com/dockervisor/dockervisor/network"
	"github.com/dockervisor/dockervisor/network/internal/linkutil"
	"github.com/dockervisor/dockervisor/network/nldump"
)

var _ network.VIFDriver = (*Driver)(nil)

// aliasPrefix starts the alias (IFLA_IFALIAS) of every host device the
// driver creates; the port ID follows. Unplug deletes a device only if it
// carries the alias of the VIF's port.
const aliasPrefix = "dockervisor:"

func alias(vif network.VIF) string { return aliasPrefix + vif.ID }

// mark sets vif's alias on the link name in ns. (A netlink link creation
// request does not carry IFLA_IFALIAS, so the alias is set after it.)
func mark(ns *linkutil.NS, name string, vif network.VIF) error {
	l, err := ns.Link(name)
	if err == nil && l == nil {
		err = errors.New("link missing after creation")
	}
	if err == nil {
		err = ns.Handle().LinkSetAlias(l, alias(vif))
	}
	if err != nil {
		return fmt.Errorf("ovs: mark %s: %w", name, err)
	}
	return nil
}

// ownedLink returns the link name in ns if it carries vif's alias; nil if it
// is missing or not ours.
func ownedLink(ns *linkutil.NS, name string, vif network.VIF) (netlink.Link, error) {
	l, err := ns.Link(name)
	if err != nil || l == nil || l.Attrs().Alias != alias(vif) {
		return nil, err
	}
	return l, nil
}

// rollback returns the undo stack of operation op on instance id.
func (d *Driver) rollback(op, id string) *undo.Stack {
	return &undo.Stack{Log: d.log, Op: "ovs: " + op, ID: id}
}

// Plug creates the host side of vif. Hybrid: the Linux bridge qbrX (STP
// off, so ports forward at once), the veth qvbX/qvoX with transmit
// checksum offload off on qvbX, qvbX on qbrX, and qvoX on the integration
// bridge with the external-ids iface-id, iface-status, attached-mac and
// vm-uuid, in one ovs-vsctl transaction. Direct: the veth tapX/nsX (nsX is
// the guest end, parked in the host namespace until Attach) with tapX on
// the integration bridge, same external-ids.
//
// Plug is idempotent. On error it removes what it created, and a port
// whose device Open vSwitch cannot open (ofport -1) is [ErrPortFailed].
// Open vSwitch not answering is [ErrUnavailable].
func (d *Driver) Plug(ctx context.Context, instanceID string, vif network.VIF) error {
	names, err := check(vif)
	if err != nil {
		return err
	}
	host, err := linkutil.Open(d.hostNS)
	if err != nil {
		return fmt.Errorf("ovs: host namespace: %w", err)
	}
	defer host.Close()
	if vif.HybridPlug {
		return d.plugHybrid(ctx, host, instanceID, vif, names)
	}
	return d.plugDirect(ctx, host, instanceID, vif, names)
}

func (d *Driver) plugHybrid(ctx context.Context, host *linkutil.NS, instanceID string, vif network.VIF, names network.Devices) error {
	u := d.rollback("plug", instanceID)
	br, created, err := host.EnsureBridge(linkutil.BridgeSpec{Name: names.Bridge, Alias: alias(vif)})
	if err != nil {
		return err
	}
	if created {
		u.Push(func(context.Context) error { return host.DeleteLink(names.Bridge) })
		if err := mark(host, names.Bridge, vif); err != nil {
			return u.Fail(ctx, err)
		}
	}
	qvb, err := host.Link(names.VethBridge)
	if err != nil {
		return u.Fail(ctx, err)
	}
	if qvb == nil {
		qvb, err = host.AddVeth(linkutil.VethSpec{
			Name: names.VethBridge, MTU: vif.MTU, Alias: alias(vif), Master: br.Attrs().Index,
			PeerName: names.VethOVS,
		})
		if err != nil {
			return u.Fail(ctx, err)
		}
		u.Push(func(context.Context) error { return host.DeleteLink(names.VethBridge) })
		if err := errors.Join(mark(host, names.VethBridge, vif), mark(host, names.VethOVS, vif)); err != nil {
			return u.Fail(ctx, err)
		}
		if err := host.SetTxChecksum(names.VethBridge, false); err != nil {
			return u.Fail(ctx, err)
		}
		qvo, err := host.Link(names.VethOVS)
		if err == nil {
			err = host.Handle().LinkSetUp(qvo)
		}
		if err != nil {
			return u.Fail(ctx, fmt.Errorf("ovs: %s up: %w", names.VethOVS, err))
		}
	} else if qvb.Attrs().Alias != alias(vif) {
		return u.Fail(ctx, fmt.Errorf("%w: %s exists and was not created for port %s", network.ErrDeviceConflict, names.VethBridge, vif.ID))
	}
	if _, err := addPort(ctx, d.look, d.runner, d.spec(instanceID, vif, names.VethOVS), qvb == nil); err != nil {
		return u.Fail(ctx, fmt.Errorf("ovs: plug %s: %w", vif.ID, err))
	}
	d.log.DebugContext(ctx, "ovs: plugged hybrid", "port", vif.ID, "bridge", d.integrationBridge(vif))
	return nil
}

func (d *Driver) plugDirect(ctx context.Context, host *linkutil.NS, instanceID string, vif network.VIF, names network.Devices) error {
	u := d.rollback("plug", instanceID)
	tap, err := host.Link(names.Tap)
	if err != nil {
		return err
	}
	switch {
	case tap == nil:
		if _, err := host.AddVeth(linkutil.VethSpec{
			Name: names.Tap, MTU: vif.MTU, Alias: alias(vif),
			PeerName: names.Guest, PeerMAC: vif.Address.HardwareAddr(),
		}); err != nil {
			return err
		}
		u.Push(func(context.Context) error { return host.DeleteLink(names.Tap) })
		if err := mark(host, names.Tap, vif); err != nil {
			return u.Fail(ctx, err)
		}
		// The userspace datapath reads what the guest end sends without
		// completing checksums: the guest end computes them itself.
		if err := host.SetTxChecksum(names.Guest, false); err != nil {
			return u.Fail(ctx, err)
		}
	case tap.Attrs().Alias != alias(vif):
		return fmt.Errorf("%w: %s exists and was not created for port %s", network.ErrDeviceConflict, names.Tap, vif.ID)
	}
	if _, err := addPort(ctx, d.look, d.runner, d.spec(instanceID, vif, names.Tap), tap == nil); err != nil {
		return u.Fail(ctx, fmt.Errorf("ovs: plug %s: %w", vif.ID, err))
	}
	d.log.DebugContext(ctx, "ovs: plugged direct", "port", vif.ID, "bridge", d.integrationBridge(vif))
	return nil
}

// Attach creates the guest end of vif in target's namespace as
// target.IfName, with the VIF's MAC, MTU, addresses and routes. Hybrid: a
// new veth tapX/ethN with tapX on qbrX. Direct: the parked guest end nsX
// moves into the namespace; when it is gone (the previous namespace died
// with its process, taking the veth along), a new veth tapX/ethN replaces
// it and the port on the integration bridge is re-added so that Open
// vSwitch opens the new device.
//
// A namespace that is gone, before or during the call, is
// [network.ErrNamespaceGone]; on error nothing Attach created is left.
func (d *Driver) Attach(ctx context.Context, instanceID string, vif network.VIF, target network.Target) error {
	names, err := check(vif)
	if err != nil {
		return err
	}
	if err := target.Validate(); err != nil {
		return err
	}
	guest, err := linkutil.Open(target.NetNS)
	if err != nil {
		return err
	}
	defer guest.Close()
	host, err := linkutil.Open(d.hostNS)
	if err != nil {
		return fmt.Errorf("ovs: host namespace: %w", err)
	}
	defer host.Close()

	u := d.rollback("attach", instanceID)
	var link netlink.Link
	if vif.HybridPlug {
		link, err = d.attachHybrid(host, guest, vif, target, names, u)
	} else {
		link, err = d.attachDirect(ctx, host, guest, instanceID, vif, target, names, u)
	}
	if err == nil {
		err = guest.ConfigureGuest(link, linkutil.GuestConfigFor(vif, target))
	}
	if err == nil {
		err = guest.Alive()
	}
	if err != nil {
		return u.Fail(ctx, fmt.Errorf("ovs: attach %s: %w", vif.ID, err))
	}
	d.log.DebugContext(ctx, "ovs: attached", "port", vif.ID, "netns", target.NetNS, "ifname", target.IfName)
	return nil
}

func (d *Driver) attachHybrid(host, guest *linkutil.NS, vif network.VIF, target network.Target, names network.Devices, u *undo.Stack) (netlink.Link, error) {
	br, err := ownedLink(host, names.Bridge, vif)
	if err != nil {
		return nil, err
	}
	if br == nil {
		return nil, fmt.Errorf("%w: %s is not plugged (no %s)", network.ErrInvalidVIF, vif.ID, names.Bridge)
	}
	// A tap left from an earlier attach goes: its guest end is replaced.
	if err := deleteOwned(host, names.Tap, vif); err != nil {
		return nil, err
	}
	if _, err := host.AddVeth(linkutil.VethSpec{
		Name: names.Tap, MTU: vif.MTU, Alias: alias(vif), Master: br.Attrs().Index,
		PeerName: target.IfName, PeerMAC: vif.Address.HardwareAddr(), PeerNS: guest,
	}); err != nil {
		return nil, err
	}
	u.Push(func(context.Context) error { return host.DeleteLink(names.Tap) })
	if err := mark(host, names.Tap, vif); err != nil {
		return nil, err
	}
	return guestLink(guest, target.IfName)
}

func (d *Driver) attachDirect(ctx context.Context, host, guest *linkutil.NS, instanceID string, vif network.VIF, target network.Target, names network.Devices, u *undo.Stack) (netlink.Link, error) {
	tap, err := ownedLink(host, names.Tap, vif)
	if err != nil {
		return nil, err
	}
	parked, err := host.Link(names.Guest)
	if err != nil {
		return nil, err
	}
	if tap != nil && parked != nil {
		if l, err := guest.Link(target.IfName); err != nil || l != nil {
			return nil, errors.Join(err, fmt.Errorf("%w: %s exists in %s", network.ErrDeviceConflict, target.IfName, target.NetNS))
		}
		// Move the parked guest end in and name it; the undo parks it
		// again, so the plugged port keeps its device.
		if err := host.Handle().LinkSetNsFd(parked, guest.Fd()); err != nil {
			return nil, fmt.Errorf("ovs: move %s into %s: %w", names.Guest, target.NetNS, err)
		}
		l, err := guestLink(guest, names.Guest)
		if err != nil {
			return nil, err
		}
		index := l.Attrs().Index
		u.Push(func(context.Context) error { return park(host, guest, index, names.Guest) })
		if err := guest.Handle().LinkSetName(l, target.IfName); err != nil {
			return nil, fmt.Errorf("ovs: rename %s to %s: %w", names.Guest, target.IfName, err)
		}
		return guestLink(guest, target.IfName)
	}
	// The guest end is gone with an earlier namespace: a new veth, and the
	// port re-added in two transactions (Open vSwitch keeps a stale port's
	// old device open when the same name reappears).
	if tap == nil {
		if l, err := host.Link(names.Tap); err != nil || l != nil {
			return nil, errors.Join(err, fmt.Errorf("%w: %s exists and was not created for port %s", network.ErrDeviceConflict, names.Tap, vif.ID))
		}
	}
	if err := errors.Join(deleteOwned(host, names.Tap, vif), host.DeleteLink(names.Guest)); err != nil {
		return nil, err
	}
	if _, err := host.AddVeth(linkutil.VethSpec{
		Name: names.Tap, MTU: vif.MTU, Alias: alias(vif),
		PeerName: target.IfName, PeerMAC: vif.Address.HardwareAddr(), PeerNS: guest,
	}); err != nil {
		return nil, err
	}
	u.Push(func(context.Context) error { return host.DeleteLink(names.Tap) })
	if err := mark(host, names.Tap, vif); err != nil {
		return nil, err
	}
	if err := guest.SetTxChecksum(target.IfName, false); err != nil {
		return nil, err
	}
	if _, err := addPort(ctx, d.look, d.runner, d.spec(instanceID, vif, names.Tap), true); err != nil {
		return nil, err
	}
	return guestLink(guest, target.IfName)
}

// park moves the guest end with index back from guest to host, down and
// named name. A guest end that is gone (its namespace died) is success.
func park(host, guest *linkutil.NS, index int, name string) error {
	h := guest.Handle()
	l, err := nldump.LinkByIndex(h, index)
	if err != nil {
		if linkutil.IsNotFound(err) {
			return nil
		}
		return err
	}
	if err := h.LinkSetDown(l); err != nil {
		return err
	}
	if l.Attrs().Name != name {
		if err := h.LinkSetName(l, name); err != nil {
			return err
		}
	}
	return h.LinkSetNsFd(l, host.Fd())
}

// guestLink reads the guest end name in ns.
func guestLink(ns *linkutil.NS, name string) (netlink.Link, error) {
	l, err := ns.Link(name)
	if err == nil && l == nil {
		err = fmt.Errorf("%w: %s vanished from %s", network.ErrNamespaceGone, name, ns.Path())
	}
	return l, err
}

// deleteOwned deletes the link name in ns if it carries vif's alias.
func deleteOwned(ns *linkutil.NS, name string, vif network.VIF) error {
	l, err := ownedLink(ns, name, vif)
	if err != nil || l == nil {
		return err
	}
	return ns.DeleteLink(name)
}

// Detach deletes the guest end target.IfName from target's namespace
// (which deletes its host end tapX with it). A gone namespace or device is
// success. For a direct VIF the port on the integration bridge stays, with
// no device, until the next Attach re-adds it or Unplug deletes it.
func (d *Driver) Detach(ctx context.Context, instanceID string, vif network.VIF, target network.Target) error {
	if _, err := check(vif); err != nil {
		return err
	}
	if err := target.Validate(); err != nil {
		return err
	}
	guest, err := linkutil.Open(target.NetNS)
	if errors.Is(err, network.ErrNamespaceGone) {
		return nil
	}
	if err != nil {
		return err
	}
	defer guest.Close()
	if err := guest.DeleteLink(target.IfName); err != nil {
		return fmt.Errorf("ovs: detach %s: %w", vif.ID, err)
	}
	d.log.DebugContext(ctx, "ovs: detached", "port", vif.ID, "netns", target.NetNS, "ifname", target.IfName)
	return nil
}

// Unplug removes the host side of vif that Plug (and Attach) created: the
// port on the integration bridge if its interface carries this package's
// owner mark, and the devices tapX, qvbX/qvoX, qbrX and nsX that carry the
// VIF's alias. Devices and ports created by others, and the integration
// bridge, are left alone. Unplugging what is gone succeeds. Open vSwitch
// not answering is [ErrUnavailable], and the Linux devices are then kept,
// so that a retry finds the port.
func (d *Driver) Unplug(ctx context.Context, instanceID string, vif network.VIF) error {
	names, err := check(vif)
	if err != nil {
		return err
	}
	host, err := linkutil.Open(d.hostNS)
	if err != nil {
		return fmt.Errorf("ovs: host namespace: %w", err)
	}
	defer host.Close()
	// Both layouts are removed, so that a VIF whose hybrid flag changed
	// between Plug and Unplug leaves nothing behind.
	if err := errors.Join(
		delOwnedPort(ctx, d.look, d.runner, names.VethOVS),
		delOwnedPort(ctx, d.look, d.runner, names.Tap),
	); err != nil {
		return fmt.Errorf("ovs: unplug %s: %w", vif.ID, err)
	}
	var errs []error
	for _, n := range []string{names.Tap, names.Guest, names.VethBridge, names.VethOVS, names.Bridge} {
		if n == names.Guest {
			// The parked guest end has no alias of its own to check: its
			// peer tapX does, and deleting tapX took it along.
			continue
		}
		errs = append(errs, deleteOwned(host, n, vif))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("ovs: unplug %s: %w", vif.ID, err)
	}
	d.log.DebugContext(ctx, "ovs: unplugged", "port", vif.ID)
	return nil
}
