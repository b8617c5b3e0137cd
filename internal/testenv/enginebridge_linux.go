package testenv

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"net"

	"github.com/vishvananda/netlink"

	"github.com/dockervisor/dockervisor/network/nldump"
)

// A private engine gets a bridge of its own for its default bridge
// network instead of --bridge=none: dockerd started with --bridge=none
// deletes the host's docker0 (the default bridge's name, whoever made
// it), which took the machine's shared engine's default network away
// whenever a test started a private engine.

// engineBridgeAlias marks an engine's bridge as the test harness's.
const engineBridgeAlias = "dockervisor test engine bridge"

// engineNets is where engines' bridges take their /30: 198.18.0.0/15,
// the benchmarking range (RFC 2544), never routed beyond this host.
var engineNets = net.IPNet{IP: net.IPv4(198, 18, 0, 0).To4(), Mask: net.CIDRMask(15, 32)}

// makeEngineBridge creates the bridge of the private engine named name,
// down, with the first address of a /30 of engineNets that no address of
// the host falls in (dockerd takes the default network's subnet from the
// bridge's address; without one it would pick a 172.x network itself,
// racing other engines starting at the same time).
func makeEngineBridge(name string) (string, error) {
	br := engineBridgeName(name)
	h, err := netlink.NewHandle()
	if err != nil {
		return "", err
	}
	defer h.Close()
	addrs, err := nldump.AddrList(h, nil, netlink.FAMILY_V4)
	if err != nil {
		return "", fmt.Errorf("list host addresses: %w", err)
	}
	hash := fnv.New32a()
	_, _ = hash.Write([]byte(name))
	ones, _ := engineNets.Mask.Size()
	blocks := uint32(1) << (30 - ones)
	start := hash.Sum32() % blocks
	var subnet *net.IPNet
	for i := range blocks {
		ip := binary.BigEndian.AppendUint32(nil, binary.BigEndian.Uint32(engineNets.IP)|(start+i)%blocks<<2)
		n := &net.IPNet{IP: ip, Mask: net.CIDRMask(30, 32)}
		free := true
		for _, a := range addrs {
			if n.Contains(a.IP) || a.IPNet.Contains(n.IP) {
				free = false
				break
			}
		}
		if free {
			subnet = n
			break
		}
	}
	if subnet == nil {
		return "", fmt.Errorf("no free /30 in %s for an engine's bridge", &engineNets)
	}
	la := netlink.NewLinkAttrs()
	la.Name = br
	if err := h.LinkAdd(&netlink.Bridge{LinkAttrs: la}); err != nil {
		return "", fmt.Errorf("create the engine's bridge %s: %w", br, err)
	}
	link, err := nldump.LinkByName(h, br)
	if err == nil {
		err = h.LinkSetAlias(link, engineBridgeAlias)
	}
	if err == nil {
		gw := &net.IPNet{IP: net.IPv4(subnet.IP[0], subnet.IP[1], subnet.IP[2], subnet.IP[3]+1).To4(), Mask: subnet.Mask}
		err = h.AddrAdd(link, &netlink.Addr{IPNet: gw})
	}
	if err != nil {
		_ = removeEngineBridge(name)
		return "", fmt.Errorf("set up the engine's bridge %s: %w", br, err)
	}
	return br, nil
}

// removeEngineBridge deletes the bridge of the private engine named name,
// if it is there and is the harness's.
func removeEngineBridge(name string) error {
	h, err := netlink.NewHandle()
	if err != nil {
		return err
	}
	defer h.Close()
	link, err := nldump.LinkByName(h, engineBridgeName(name))
	var nf netlink.LinkNotFoundError
	switch {
	case errors.As(err, &nf):
		return nil
	case err != nil:
		return err
	case link.Attrs().Alias != engineBridgeAlias:
		return fmt.Errorf("%s is not a test engine's bridge (alias %q)", link.Attrs().Name, link.Attrs().Alias)
	}
	if err := h.LinkDel(link); err != nil {
		return fmt.Errorf("delete the engine's bridge %s: %w", link.Attrs().Name, err)
	}
	return nil
}

// engineBridgeExists reports whether the bridge of the private engine
// named name is there.
func engineBridgeExists(name string) bool {
	h, err := netlink.NewHandle()
	if err != nil {
		return false
	}
	defer h.Close()
	_, err = nldump.LinkByName(h, engineBridgeName(name))
	return err == nil
}
