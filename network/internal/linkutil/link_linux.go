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
	// Alias is the owner mark (IFLA_IFALIAS) of a bridge EnsureBridge
	// creates: the bridge carries it from the moment it has its name. An
	// existing bridge keeps its own alias.
	Alias string
}

// EnsureBridge creates the bridge spec.Name, up, unless it exists. It
// returns the bridge and whether this call created it. An existing device
// of that name that is not a bridge is [network.ErrDeviceConflict]; an
// existing bridge is returned as it is, and brought up only if it carries
// spec.Alias (a bridge of someone else's is not reconfigured).
//
// With an alias, the bridge is created down under a temporary name, marked,
// renamed to spec.Name (which fails if the name was taken in between) and
// set up, so that a device of that name never exists without its mark, even
// if the process dies half way.
func (n *NS) EnsureBridge(spec BridgeSpec) (*netlink.Bridge, bool, error) {
	if err := network.ValidateDeviceName(spec.Name); err != nil {
		return nil, false, err
	}
	if spec.Alias == "" {
		br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: spec.Name, MTU: spec.MTU, Flags: net.FlagUp, TxQLen: -1}}
		err := n.h.LinkAdd(br)
		if err == nil {
			l, err := n.Link(spec.Name)
			if err == nil && l == nil {
				err = fmt.Errorf("%w: %s vanished after its creation", network.ErrDeviceConflict, spec.Name)
			}
			if err != nil {
				return nil, false, err
			}
			return n.existingBridge(l, spec, true)
		}
		if !errors.Is(err, unix.EEXIST) {
			return nil, false, fmt.Errorf("linkutil: create bridge %s in %s: %w", spec.Name, n.path, err)
		}
	} else if created, err := n.createMarked(spec); err != nil || created != nil {
		if err != nil {
			return nil, false, err
		}
		return created, true, nil
	}
	l, err := n.Link(spec.Name)
	if err == nil && l == nil {
		err = fmt.Errorf("%w: %s exists but cannot be read", network.ErrDeviceConflict, spec.Name)
	}
	if err != nil {
		return nil, false, err
	}
	return n.existingBridge(l, spec, false)
}

// createMarked creates the bridge of spec with its alias under a temporary
// name and renames it. It returns nil, and no error, when spec.Name exists
// already.
func (n *NS) createMarked(spec BridgeSpec) (*netlink.Bridge, error) {
	if l, err := n.Link(spec.Name); err != nil || l != nil {
		return nil, err
	}
	tmp := TempName()
	br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: tmp, MTU: spec.MTU, TxQLen: -1}}
	if err := n.h.LinkAdd(br); err != nil {
		return nil, fmt.Errorf("linkutil: create bridge %s in %s: %w", spec.Name, n.path, err)
	}
	fail := func(err error) (*netlink.Bridge, error) {
		return nil, errors.Join(fmt.Errorf("linkutil: create bridge %s in %s: %w", spec.Name, n.path, err), n.DeleteByIndex(br))
	}
	if br.Index == 0 {
		return fail(errors.New("no index after creation"))
	}
	if err := nameMarked(n.h, br.Index, spec.Name, spec.Alias, true); err != nil {
		if errors.Is(err, unix.EEXIST) {
			// Created by someone else in between: the caller checks it.
			return nil, n.DeleteByIndex(br)
		}
		return fail(fmt.Errorf("name %s: %w", tmp, err))
	}
	l, err := nldump.LinkByIndex(n.h, br.Index)
	if err != nil {
		return fail(err)
	}
	b, ok := l.(*netlink.Bridge)
	if !ok {
		return fail(fmt.Errorf("%w: %s is a %s", network.ErrDeviceConflict, spec.Name, l.Type()))
	}
	return b, nil
}

// existingBridge checks that l, the device called spec.Name, is a bridge,
// and brings it up if it is ours and down.
func (n *NS) existingBridge(l netlink.Link, spec BridgeSpec, created bool) (*netlink.Bridge, bool, error) {
	b, ok := l.(*netlink.Bridge)
	if !ok {
		return nil, false, fmt.Errorf("%w: %s exists and is a %s, not a bridge", network.ErrDeviceConflict, spec.Name, l.Type())
	}
	if b.Attrs().Flags&net.FlagUp == 0 && (created || spec.Alias != "" && b.Attrs().Alias == spec.Alias) {
		if err := n.h.LinkSetUp(b); err != nil {
			return nil, false, fmt.Errorf("linkutil: set %s up: %w", spec.Name, err)
		}
	}
	return b, created, nil
}

// VethSpec describes a veth pair: one end in the namespace AddVeth is
// called on, the peer in PeerNS.
type VethSpec struct {
	// Name, MTU, Alias (the owner mark), MAC and Master (a bridge's index,
	// 0 for none) of the end in this namespace, which is created up.
	Name   string
	MTU    int
	Alias  string
	MAC    net.HardwareAddr
	Master int
	// PeerName, PeerAlias, PeerMAC and PeerMTU (0: MTU) of the other end,
	// created down in PeerNS (nil: this namespace).
	PeerName  string
	PeerAlias string
	PeerMAC   net.HardwareAddr
	PeerMTU   int
	PeerNS    *NS
}

// AddVeth creates the veth pair in one netlink request, with the peer
// already in its namespace, then puts the local end on Master. It returns
// the local end. On error nothing is left. A name in use is
// [network.ErrDeviceConflict].
//
// An end with an alias is created under a temporary name, marked, and only
// then renamed to its name, so that a device of that name never exists
// without its owner mark, even if the process dies half way; the local
// end is set up after its rename.
func (n *NS) AddVeth(spec VethSpec) (netlink.Link, error) {
	for _, name := range []string{spec.Name, spec.PeerName} {
		if err := network.ValidateDeviceName(name); err != nil {
			return nil, err
		}
	}
	peerNS := spec.PeerNS
	if peerNS == nil {
		peerNS = n
	}
	peerMTU := spec.PeerMTU
	if peerMTU == 0 {
		peerMTU = spec.MTU
	}
	name, peerName := spec.Name, spec.PeerName
	if spec.Alias != "" {
		name = TempName()
	}
	if spec.PeerAlias != "" {
		peerName = TempName()
	}
	v := &netlink.Veth{
		LinkAttrs:        netlink.LinkAttrs{Name: name, MTU: spec.MTU, HardwareAddr: spec.MAC, TxQLen: -1},
		PeerName:         peerName,
		PeerHardwareAddr: spec.PeerMAC,
		PeerMTU:          uint32(max(peerMTU, 0)),
		PeerTxQLen:       -1,
	}
	if spec.Alias == "" {
		v.Flags = net.FlagUp
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
		if l, err = nldump.LinkByName(n.h, name); err != nil {
			return nil, errors.Join(fmt.Errorf("linkutil: veth %s: %w", spec.Name, err), n.DeleteLink(name))
		}
	}
	setName := func(h *netlink.Handle, index int, to, alias string, up bool) error {
		if err := nameMarked(h, index, to, alias, up); err != nil {
			if errors.Is(err, unix.EEXIST) {
				return fmt.Errorf("%w: veth %s/%s: %s exists: %w", network.ErrDeviceConflict, spec.Name, spec.PeerName, to, err)
			}
			return fmt.Errorf("name %s: %w", to, err)
		}
		return nil
	}
	if spec.PeerAlias != "" {
		var p netlink.Link
		if p, err = nldump.LinkByName(peerNS.h, peerName); err == nil {
			err = setName(peerNS.h, p.Attrs().Index, spec.PeerName, spec.PeerAlias, false)
		}
	}
	if err == nil && spec.Master != 0 {
		err = n.h.LinkSetMasterByIndex(l, spec.Master)
	}
	if err == nil && spec.Alias != "" {
		err = setName(n.h, l.Attrs().Index, spec.Name, spec.Alias, true)
		// What the calls above changed, without reading the link again.
		a := l.Attrs()
		a.Name, a.Alias, a.Flags = spec.Name, spec.Alias, a.Flags|net.FlagUp
		if spec.Master != 0 {
			a.MasterIndex = spec.Master
		}
	}
	if err != nil {
		if errors.Is(err, network.ErrDeviceConflict) {
			return nil, errors.Join(err, n.DeleteByIndex(l))
		}
		return nil, errors.Join(fmt.Errorf("linkutil: veth %s: %w", spec.Name, err), n.DeleteByIndex(l))
	}
	return l, nil
}

// NameMarked gives the link with index, created under a temporary name,
// its owner mark alias and its name, and sets it up if up, in one netlink
// request (an RTM_NEWLINK without NLM_F_CREATE for an existing index is a
// change of that link): the name never exists without the mark, and the
// kernel renames before it changes the flags, so the link is still down
// when renamed, as kernels before 6.2 require. A name that exists is
// EEXIST.
func (n *NS) NameMarked(index int, name, alias string, up bool) error {
	return nameMarked(n.h, index, name, alias, up)
}

func nameMarked(h *netlink.Handle, index int, name, alias string, up bool) error {
	d := &netlink.Device{LinkAttrs: netlink.LinkAttrs{Index: index, Name: name, Alias: alias, TxQLen: -1}}
	if up {
		d.Flags = net.FlagUp
	}
	return h.LinkModify(d)
}
