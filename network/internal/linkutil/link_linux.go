package linkutil

import (
	"errors"
	"fmt"
	"net"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/dockervisor/dockervisor/network"
	"github.com/dockervisor/dockervisor/network/nldump"
)

// IsNotFound reports whether err means that a link (or address, or route)
// does not exist.
func IsNotFound(err error) bool {
	var nf netlink.LinkNotFoundError
	return errors.As(err, &nf) || errors.Is(err, unix.ENODEV) || errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ESRCH)
}

// LinkList lists the namespace's links, retrying interrupted dumps.
func (n *NS) LinkList() ([]netlink.Link, error) {
	return nldump.LinkList(n.h)
}

// AddrList lists the addresses of link (nil: all links) of family
// (netlink.FAMILY_ALL, FAMILY_V4, FAMILY_V6), retrying interrupted dumps.
func (n *NS) AddrList(link netlink.Link, family int) ([]netlink.Addr, error) {
	return nldump.AddrList(n.h, link, family)
}

// RouteList lists the main-table routes through link (nil: all links) of
// family, retrying interrupted dumps.
func (n *NS) RouteList(link netlink.Link, family int) ([]netlink.Route, error) {
	return nldump.RouteList(n.h, link, family)
}

// Link returns the link called name, or (nil, nil) if there is none.
func (n *NS) Link(name string) (netlink.Link, error) {
	l, err := nldump.LinkByName(n.h, name)
	if err != nil {
		if IsNotFound(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("linkutil: link %s in %s: %w", name, n.path, err)
	}
	return l, nil
}

// DeleteLink deletes the link called name. A link that does not exist is
// success.
func (n *NS) DeleteLink(name string) error {
	l, err := n.Link(name)
	if err != nil || l == nil {
		return err
	}
	if err := n.h.LinkDel(l); err != nil && !IsNotFound(err) {
		return fmt.Errorf("linkutil: delete %s in %s: %w", name, n.path, err)
	}
	return nil
}

// Ports returns the links enslaved to the link with index master.
func (n *NS) Ports(master int) ([]netlink.Link, error) {
	all, err := n.LinkList()
	if err != nil {
		return nil, fmt.Errorf("linkutil: list links in %s: %w", n.path, err)
	}
	var ports []netlink.Link
	for _, l := range all {
		if l.Attrs().MasterIndex == master {
			ports = append(ports, l)
		}
	}
	return ports, nil
}

// BridgeSpec describes a Linux bridge to ensure.
type BridgeSpec struct {
	Name string
	// MTU of the bridge; 0 leaves the kernel's choice (the smallest port
	// MTU).
	MTU int
	// Alias marks the bridge as created by its owner (IFLA_IFALIAS); it is
	// only set on a bridge EnsureBridge creates.
	Alias string
}

// EnsureBridge creates the bridge spec.Name, up, unless it exists. It
// returns the bridge and whether this call created it. An existing device
// of that name that is not a bridge is [network.ErrDeviceConflict]; an
// existing bridge is brought up and kept as it is.
func (n *NS) EnsureBridge(spec BridgeSpec) (*netlink.Bridge, bool, error) {
	if err := network.ValidateDeviceName(spec.Name); err != nil {
		return nil, false, err
	}
	br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: spec.Name, MTU: spec.MTU, Flags: net.FlagUp, TxQLen: -1}}
	err := n.h.LinkAdd(br)
	if err == nil {
		// The kernel ignores IFLA_IFALIAS when it creates a link.
		if spec.Alias != "" {
			err = n.h.LinkSetAlias(br, spec.Alias)
		}
		var l netlink.Link
		if err == nil {
			l, err = nldump.LinkByName(n.h, spec.Name)
		}
		if err != nil {
			return nil, false, errors.Join(fmt.Errorf("linkutil: created bridge %s: %w", spec.Name, err), n.DeleteLink(spec.Name))
		}
		b, ok := l.(*netlink.Bridge)
		if !ok {
			return nil, true, fmt.Errorf("%w: %s was replaced by a %s", network.ErrDeviceConflict, spec.Name, l.Type())
		}
		return b, true, nil
	}
	if !errors.Is(err, unix.EEXIST) {
		return nil, false, fmt.Errorf("linkutil: create bridge %s in %s: %w", spec.Name, n.path, err)
	}
	l, err := nldump.LinkByName(n.h, spec.Name)
	if err != nil {
		return nil, false, fmt.Errorf("linkutil: bridge %s exists but cannot be read: %w", spec.Name, err)
	}
	b, ok := l.(*netlink.Bridge)
	if !ok {
		return nil, false, fmt.Errorf("%w: %s exists and is a %s, not a bridge", network.ErrDeviceConflict, spec.Name, l.Type())
	}
	if b.Attrs().Flags&net.FlagUp == 0 {
		if err := n.h.LinkSetUp(b); err != nil {
			return nil, false, fmt.Errorf("linkutil: set %s up: %w", spec.Name, err)
		}
	}
	return b, false, nil
}

// VethSpec describes a veth pair: one end in the namespace AddVeth is
// called on, the peer in PeerNS.
type VethSpec struct {
	// Name, MTU, Alias, MAC and Master (a bridge's index, 0 for none) of
	// the end in this namespace, which is created up.
	Name   string
	MTU    int
	Alias  string
	MAC    net.HardwareAddr
	Master int
	// PeerName, PeerMAC and PeerMTU (0: MTU) of the other end, created
	// down in PeerNS (nil: this namespace).
	PeerName string
	PeerMAC  net.HardwareAddr
	PeerMTU  int
	PeerNS   *NS
}

// AddVeth creates the veth pair in one netlink request, with the peer
// already in its namespace, then puts the local end on Master. It returns
// the local end. On error nothing is left. A name in use is
// [network.ErrDeviceConflict].
func (n *NS) AddVeth(spec VethSpec) (netlink.Link, error) {
	for _, name := range []string{spec.Name, spec.PeerName} {
		if err := network.ValidateDeviceName(name); err != nil {
			return nil, err
		}
	}
	peerMTU := spec.PeerMTU
	if peerMTU == 0 {
		peerMTU = spec.MTU
	}
	v := &netlink.Veth{
		LinkAttrs:        netlink.LinkAttrs{Name: spec.Name, MTU: spec.MTU, HardwareAddr: spec.MAC, Flags: net.FlagUp, TxQLen: -1},
		PeerName:         spec.PeerName,
		PeerHardwareAddr: spec.PeerMAC,
		PeerMTU:          uint32(max(peerMTU, 0)),
		PeerTxQLen:       -1,
	}
	if spec.PeerNS != nil {
		v.PeerNamespace = netlink.NsFd(spec.PeerNS.Fd())
	}
	if err := n.h.LinkAdd(v); err != nil {
		if errors.Is(err, unix.EEXIST) {
			return nil, fmt.Errorf("%w: veth %s/%s: a device of that name exists: %w", network.ErrDeviceConflict, spec.Name, spec.PeerName, err)
		}
		return nil, fmt.Errorf("linkutil: create veth %s/%s: %w", spec.Name, spec.PeerName, err)
	}
	// LinkAdd looked the new link's index up.
	var l netlink.Link = v
	var err error
	if v.Index == 0 {
		l, err = nldump.LinkByName(n.h, spec.Name)
	}
	if err == nil && spec.Alias != "" {
		// The kernel ignores IFLA_IFALIAS when it creates a link.
		err = n.h.LinkSetAlias(l, spec.Alias)
	}
	if err == nil && spec.Master != 0 {
		err = n.h.LinkSetMasterByIndex(l, spec.Master)
	}
	if err != nil {
		return nil, errors.Join(fmt.Errorf("linkutil: veth %s: %w", spec.Name, err), n.DeleteLink(spec.Name))
	}
	return l, nil
}
