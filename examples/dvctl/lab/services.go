package lab

import (
	"fmt"
	"net/netip"
	"slices"

	"github.com/dockervisor/dockervisor/network"
	"github.com/dockervisor/dockervisor/network/dhcp"
)

// dhcpServer returns the address of the DHCP port of network net (which
// has dhcp): the file's, or the subnet's last host address.
func (f *File) dhcpServer(net string) (netip.Addr, error) {
	n := f.Networks[net]
	sub, err := f.subnet(net)
	if err != nil {
		return netip.Addr{}, err
	}
	if n.DHCPServer != "" {
		a, err := netip.ParseAddr(n.DHCPServer)
		if err != nil || !sub.CIDR.Contains(a) || a == sub.CIDR.Addr() {
			return netip.Addr{}, fmt.Errorf("%w: network %q: dhcp_server %q is no host address of %s", ErrInvalid, net, n.DHCPServer, sub.CIDR)
		}
		return a, nil
	}
	return lastHost(sub.CIDR), nil
}

// lastHost is the last address of p that is not its broadcast address.
func lastHost(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().AsSlice()
	bits := p.Bits()
	for i := range b {
		for j := 7; j >= 0; j-- {
			if i*8+(7-j) >= bits {
				b[i] |= 1 << j
			}
		}
	}
	a, _ := netip.AddrFromSlice(b)
	if a.Is4() {
		return a.Prev() // not the broadcast address
	}
	return a
}

// validateDHCP checks the DHCP port of network net: a host address of the
// subnet that is neither the gateway nor a port's.
func (f *File) validateDHCP(net string) error {
	n := f.Networks[net]
	if !n.DHCP {
		if n.DHCPServer != "" {
			return fmt.Errorf("%w: network %q: dhcp_server without dhcp", ErrInvalid, net)
		}
		return nil
	}
	a, err := f.dhcpServer(net)
	if err != nil {
		return err
	}
	if n.Gateway == a.String() {
		return fmt.Errorf("%w: network %q: the DHCP port %s is the gateway", ErrInvalid, net, a)
	}
	for _, name := range f.InstanceNames() {
		for i, p := range f.Instances[name].Ports {
			if ip, err := netip.ParseAddr(p.IP); err == nil && p.Network == net && ip == a {
				return fmt.Errorf("%w: instance %q port %d: %s is the DHCP port's address (dhcp_server)", ErrInvalid, name, i, a)
			}
		}
	}
	return nil
}

// DHCPNetworks returns the networks with dhcp, sorted.
func (f *File) DHCPNetworks() []string {
	var out []string
	for _, n := range f.networkNames() {
		if f.Networks[n].DHCP {
			out = append(out, n)
		}
	}
	return out
}

// NetworkID returns the network ID of a lab network, as its ports carry it
// (VIF.NetworkID).
func (f *File) NetworkID(net string) string { return f.Name + "/" + net }

// ServiceNetnsName returns the name of the service namespace of a lab
// network with dhcp, where its DHCP server and metadata service run.
func (f *File) ServiceNetnsName(net string) string { return "dvlab-" + f.Name + "-" + net }

// dhcpMeta sets what a port's subnet on network net says of its DHCP
// server, as Nova's subnet meta says it (dhcp_server), and adds the host
// route to the metadata service through the DHCP port, which instances
// that configure no DHCP client (application instances, configured by the
// Driver) need to reach it.
func (f *File) dhcpMeta(net string, sub *network.Subnet) error {
	if !f.Networks[net].DHCP {
		return nil
	}
	a, err := f.dhcpServer(net)
	if err != nil {
		return err
	}
	sub.DHCPServer = a
	if a.Is4() {
		sub.Routes = append(sub.Routes, network.Route{Dest: netip.PrefixFrom(dhcp.MetadataAddress, 32), Gateway: a})
	}
	return nil
}

// servicePort returns the VIF of the DHCP port of network net, plugged
// as the network's instance ports are.
func (f *File) servicePort(net string) (network.VIF, error) {
	n := f.Networks[net]
	sub, err := f.subnet(net)
	if err != nil {
		return network.VIF{}, err
	}
	a, err := f.dhcpServer(net)
	if err != nil {
		return network.VIF{}, err
	}
	id := f.PortID("dhcp:"+net, 0)
	v := network.VIF{
		ID: id, Address: derivedMAC(id), Type: network.VIFTypeBridge, Bridge: f.BridgeName(net),
		NetworkID: f.NetworkID(net), MTU: n.MTU,
		Subnets: []network.Subnet{{CIDR: sub.CIDR, IPs: []netip.Addr{a}}},
	}
	if n.Type == NetworkOVS {
		v.Type, v.HybridPlug, v.Bridge = network.VIFTypeOVS, true, f.OVSBridgeName(net)
	}
	return v, nil
}

// dhcpConfig returns the DHCP subnet of network net and the hosts of its
// ports in the file.
func (f *File) dhcpHosts(net string) ([]dhcp.Host, error) {
	var hosts []dhcp.Host
	for _, name := range f.InstanceNames() {
		vifs, err := f.vifs(name)
		if err != nil {
			return nil, err
		}
		for _, v := range vifs {
			if v.NetworkID != f.NetworkID(net) {
				continue
			}
			if h, ok := dhcp.HostFor(v); ok && !slices.ContainsFunc(hosts, func(x dhcp.Host) bool { return x.MAC.String() == h.MAC.String() }) {
				hosts = append(hosts, h)
			}
		}
	}
	return hosts, nil
}
