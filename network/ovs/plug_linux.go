package ovs

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/vishvananda/netlink"

	"github.com/dockervisor/dockervisor/internal/undo"
	"github.com/dockervisor/dockervisor/network"
	"github.com/dockervisor/dockervisor/network/internal/linkutil"
	"github.com/dockervisor/dockervisor/network/nldump"
)

var _ network.VIFDriver = (*Driver)(nil)

// DriverName is the driver's name in the owner marks of the devices it
// creates (see [network.DeviceOwner]).
const DriverName = "ovs"

// marks are the interface aliases that make a host device the driver's own
// for vif of the instance instanceID: its owner mark, first (the one the
// driver writes), and the port-only alias of earlier versions.
func marks(instanceID string, vif network.VIF) []string {
	return []string{
		network.DeviceOwner{Driver: DriverName, Instance: instanceID, Port: vif.ID}.Mark(),
		linkutil.LegacyPortMark(vif.ID),
	}
}

// layoutNames are the host device names of vif's layout, each of which
// must be free or the VIF's own before a Plug creates anything; the tap
// comes before the parked guest end, which is recognised by its peer.
func layoutNames(vif network.VIF, names network.Devices) []string {
	if vif.HybridPlug {
		return []string{names.Bridge, names.VethBridge, names.VethOVS, names.Tap}
	}
	return []string{names.Tap, names.Guest}
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
// Every device carries the owner mark of the driver, the instance and the
// port. Before it creates anything, Plug checks every device name of the
// VIF's layout and its Open vSwitch port: one that exists and is not this
// instance's and port's (another instance whose port ID starts the same,
// a device someone else made) is [network.ErrDeviceConflict], and is left
// as it is.
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
	host.SweepTempsLogged(ctx, d.log)
	ms := marks(instanceID, vif)
	var tap netlink.Link
	for _, n := range layoutNames(vif, names) {
		var l netlink.Link
		if n == names.Guest {
			l, err = parkedEnd(host, tap, n, ms)
		} else {
			l, err = host.OwnedLink(n, ms...)
		}
		if err != nil {
			return err
		}
		if n == names.Tap {
			tap = l
		}
	}
	port := names.Tap
	if vif.HybridPlug {
		port = names.VethOVS
	}
	if err := checkPort(ctx, d.look, d.spec(instanceID, vif, port)); err != nil {
		return fmt.Errorf("ovs: plug %s: %w", vif.ID, err)
	}
	if vif.HybridPlug {
		return d.plugHybrid(ctx, host, instanceID, vif, names)
	}
	return d.plugDirect(ctx, host, instanceID, vif, names)
}

func (d *Driver) plugHybrid(ctx context.Context, host *linkutil.NS, instanceID string, vif network.VIF, names network.Devices) error {
	u := d.rollback("plug", instanceID)
	ms := marks(instanceID, vif)
	br, created, err := host.EnsureBridge(linkutil.BridgeSpec{Name: names.Bridge, Alias: ms[0]})
	if err != nil {
		return err
	}
	if created {
		u.Push(func(context.Context) error { return host.DeleteByIndex(br) })
	}
	qvb, err := host.OwnedLink(names.VethBridge, ms...)
	if err != nil {
		return u.Fail(ctx, err)
	}
	fresh := qvb == nil
	if fresh {
		qvb, err = host.AddVeth(linkutil.VethSpec{
			Name: names.VethBridge, MTU: vif.MTU, Alias: ms[0], Master: br.Attrs().Index,
			PeerName: names.VethOVS, PeerAlias: ms[0],
		})
		if err != nil {
			return u.Fail(ctx, err)
		}
		u.Push(func(context.Context) error { return host.DeleteByIndex(qvb) })
		if err := host.SetTxChecksum(names.VethBridge, false); err != nil {
			return u.Fail(ctx, err)
		}
		qvo, err := host.OwnedLink(names.VethOVS, ms...)
		if err == nil && qvo == nil {
			err = errors.New("missing after its creation")
		}
		if err == nil {
			err = host.Handle().LinkSetUp(qvo)
		}
		if err != nil {
			return u.Fail(ctx, fmt.Errorf("ovs: %s up: %w", names.VethOVS, err))
		}
	}
	if _, err := addPort(ctx, d.look, d.runner, d.spec(instanceID, vif, names.VethOVS), fresh); err != nil {
		return u.Fail(ctx, fmt.Errorf("ovs: plug %s: %w", vif.ID, err))
	}
	d.log.DebugContext(ctx, "ovs: plugged hybrid", "port", vif.ID, "bridge", d.integrationBridge(vif))
	return nil
}

func (d *Driver) plugDirect(ctx context.Context, host *linkutil.NS, instanceID string, vif network.VIF, names network.Devices) error {
	u := d.rollback("plug", instanceID)
	ms := marks(instanceID, vif)
	tap, err := host.OwnedLink(names.Tap, ms...)
	if err != nil {
		return err
	}
	fresh := tap == nil
	if fresh {
		tap, err = host.AddVeth(linkutil.VethSpec{
			Name: names.Tap, MTU: vif.MTU, Alias: ms[0],
			PeerName: names.Guest, PeerAlias: ms[0], PeerMAC: vif.Address.HardwareAddr(),
		})
		if err != nil {
			return err
		}
		u.Push(func(context.Context) error { return host.DeleteByIndex(tap) })
		// The userspace datapath reads what the guest end sends without
		// completing checksums: the guest end computes them itself
		// (harmless on the kernel datapath; see the package doc).
		if err := host.SetTxChecksum(names.Guest, false); err != nil {
			return u.Fail(ctx, err)
		}
	}
	if _, err := addPort(ctx, d.look, d.runner, d.spec(instanceID, vif, names.Tap), fresh); err != nil {
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
// A host device of the VIF's names that is not this instance's and port's
// is [network.ErrDeviceConflict] and is left alone. A namespace that is
// gone, before or during the call, is [network.ErrNamespaceGone]; on
// error nothing Attach created is left.
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
		link, err = d.attachHybrid(host, guest, instanceID, vif, target, names, u)
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

func (d *Driver) attachHybrid(host, guest *linkutil.NS, instanceID string, vif network.VIF, target network.Target, names network.Devices, u *undo.Stack) (netlink.Link, error) {
	ms := marks(instanceID, vif)
	// Every device of the layout must be the VIF's own. A tap left from an
	// earlier attach goes: its guest end is replaced.
	old, err := host.OwnedLink(names.Tap, ms...)
	if err != nil {
		return nil, err
	}
	for _, n := range []string{names.VethBridge, names.VethOVS} {
		if _, err := host.OwnedLink(n, ms...); err != nil {
			return nil, err
		}
	}
	br, err := host.OwnedLink(names.Bridge, ms...)
	if err != nil {
		return nil, err
	}
	if br == nil {
		return nil, fmt.Errorf("%w: %s is not plugged (no %s)", network.ErrInvalidVIF, vif.ID, names.Bridge)
	}
	if old != nil {
		if err := host.DeleteByIndex(old); err != nil {
			return nil, err
		}
	}
	tap, err := host.AddVeth(linkutil.VethSpec{
		Name: names.Tap, MTU: vif.MTU, Alias: ms[0], Master: br.Attrs().Index,
		PeerName: target.IfName, PeerMAC: vif.Address.HardwareAddr(), PeerNS: guest,
	})
	if err != nil {
		return nil, err
	}
	u.Push(func(context.Context) error { return host.DeleteByIndex(tap) })
	return guestLink(guest, target.IfName)
}

// parkedEnd returns the guest end nsX parked in the host namespace if it is
// vif's: marked as vif's, or (from an earlier version, which did not mark
// it) the peer of vif's tap. Another device called nsX is a conflict.
func parkedEnd(host *linkutil.NS, tap netlink.Link, name string, ms []string) (netlink.Link, error) {
	l, err := host.Link(name)
	if err != nil || l == nil {
		return nil, err
	}
	if slices.Contains(ms, l.Attrs().Alias) || tap != nil && l.Attrs().Alias == "" && l.Attrs().ParentIndex == tap.Attrs().Index {
		return l, nil
	}
	_, err = host.OwnedLink(name, ms...)
	return nil, err
}

func (d *Driver) attachDirect(ctx context.Context, host, guest *linkutil.NS, instanceID string, vif network.VIF, target network.Target, names network.Devices, u *undo.Stack) (netlink.Link, error) {
	ms := marks(instanceID, vif)
	tap, err := host.OwnedLink(names.Tap, ms...)
	if err != nil {
		return nil, err
	}
	parked, err := parkedEnd(host, tap, names.Guest, ms)
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
	for _, l := range []netlink.Link{tap, parked} {
		if l != nil {
			if err := host.DeleteByIndex(l); err != nil {
				return nil, err
			}
		}
	}
	tap, err = host.AddVeth(linkutil.VethSpec{
		Name: names.Tap, MTU: vif.MTU, Alias: ms[0],
		PeerName: target.IfName, PeerMAC: vif.Address.HardwareAddr(), PeerNS: guest,
	})
	if err != nil {
		return nil, err
	}
	u.Push(func(context.Context) error { return host.DeleteByIndex(tap) })
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

// Detach removes vif's guest end: it deletes the tap tapX, if it is this
// instance's and port's, and with it the guest end in target's namespace.
// A gone namespace or device, and a tap that is someone else's, are
// success. A direct VIF that is plugged but not attached (its guest end
// parked in the host namespace) is left as it is. For a direct VIF the
// port on the integration bridge stays, with no device, until the next
// Attach re-adds it or Unplug deletes it.
func (d *Driver) Detach(ctx context.Context, instanceID string, vif network.VIF, target network.Target) error {
	names, err := check(vif)
	if err != nil {
		return err
	}
	if err := target.Validate(); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	host, err := linkutil.Open(d.hostNS)
	if err != nil {
		return fmt.Errorf("ovs: host namespace: %w", err)
	}
	defer host.Close()
	ms := marks(instanceID, vif)
	tap, err := host.OwnedLink(names.Tap, ms...)
	if errors.Is(err, network.ErrDeviceConflict) || err == nil && tap == nil {
		return nil
	}
	if err != nil {
		return err
	}
	if !vif.HybridPlug {
		if parked, err := parkedEnd(host, tap, names.Guest, ms); err != nil || parked != nil {
			return nil // plugged, not attached
		}
	}
	if err := host.DeleteByIndex(tap); err != nil {
		return fmt.Errorf("ovs: detach %s: %w", vif.ID, err)
	}
	d.log.DebugContext(ctx, "ovs: detached", "port", vif.ID, "netns", target.NetNS, "ifname", target.IfName)
	return nil
}

// Unplug removes the host side of vif that Plug (and Attach) created: the
// port on the integration bridge if it is this instance's and port's (see
// [OwnerKey]), and the devices tapX, nsX, qvbX/qvoX and qbrX that carry
// their owner mark (qbrX once no other port is left on it). Devices and
// ports of other instances or ports, those created by others, and the
// integration bridge are left alone. Unplugging what is gone succeeds.
// Open vSwitch not answering is [ErrUnavailable], and the Linux devices
// are then kept, so that a retry finds the port.
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
	host.SweepTempsLogged(ctx, d.log)
	// Both layouts are removed, so that a VIF whose hybrid flag changed
	// between Plug and Unplug leaves nothing behind.
	if err := errors.Join(
		delOwnedPort(ctx, d.look, d.runner, d.spec(instanceID, vif, names.VethOVS)),
		delOwnedPort(ctx, d.look, d.runner, d.spec(instanceID, vif, names.Tap)),
	); err != nil {
		return fmt.Errorf("ovs: unplug %s: %w", vif.ID, err)
	}
	ms := marks(instanceID, vif)
	var errs []error
	tap, err := host.OwnedLink(names.Tap, ms...)
	if err == nil {
		// The parked guest end goes (an unmarked one of an earlier
		// version is recognised as the tap's peer).
		var parked netlink.Link
		if parked, err = parkedEnd(host, tap, names.Guest, ms); err == nil && parked != nil {
			errs = append(errs, host.DeleteByIndex(parked))
		}
	}
	if !errors.Is(err, network.ErrDeviceConflict) {
		errs = append(errs, err)
	}
	for _, n := range []string{names.Tap, names.VethBridge, names.VethOVS} {
		_, err := host.DeleteOwned(n, ms...)
		errs = append(errs, err)
	}
	errs = append(errs, deleteOwnedBridge(host, names.Bridge, ms))
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("ovs: unplug %s: %w", vif.ID, err)
	}
	d.log.DebugContext(ctx, "ovs: unplugged", "port", vif.ID)
	return nil
}

// deleteOwnedBridge deletes the bridge name if it carries one of marks and
// no port is left on it.
func deleteOwnedBridge(host *linkutil.NS, name string, marks []string) error {
	br, err := host.OwnedLink(name, marks...)
	if errors.Is(err, network.ErrDeviceConflict) || err == nil && br == nil {
		return nil
	}
	if err != nil {
		return err
	}
	ports, err := host.Ports(br.Attrs().Index)
	if err != nil || len(ports) > 0 {
		return err
	}
	return host.DeleteByIndex(br)
}
