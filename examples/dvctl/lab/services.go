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

// autoAddress reports whether ports on network net make their own IPv6
// address from the prefix and their MAC (SLAAC): Neutron's slaac and
// dhcpv6-stateless modes.
func (f *File) autoAddress(net string) bool {
	m := f.Networks[net].IPv6Mode
	return m == network.IPv6SLAAC || m == network.IPv6DHCPStateless
}

// fillAutoAddresses gives a port without an ip on a slaac or
// dhcpv6-stateless network the EUI-64 address of its MAC. What does not
// parse is left for Validate to report.
func (f *File) fillAutoAddresses() {
	for name, in := range f.Instances {
		for i, p := range in.Ports {
			if p.IP != "" || !f.autoAddress(p.Network) {
				continue
			}
			pfx, err1 := netip.ParsePrefix(f.Networks[p.Network].CIDR)
			mac, err2 := f.portMAC(name, i)
			if err1 == nil && err2 == nil && pfx.Addr().Is6() && pfx.Bits() == 64 {
				in.Ports[i].IP = network.SLAACAddress(pfx, mac).String()
			}
		}
	}
}

// validateIPv6Mode checks network net's ipv6_mode: a Neutron mode, on an
// IPv6 network with dhcp; on an automatic one, a /64 and ports at their
// EUI-64 addresses.
func (f *File) validateIPv6Mode(net string) error {
	n := f.Networks[net]
	switch n.IPv6Mode {
	case "":
		return nil
	case network.IPv6SLAAC, network.IPv6DHCPStateful, network.IPv6DHCPStateless:
	default:
		return fmt.Errorf("%w: network %q: ipv6_mode %q: want slaac, dhcpv6-stateful or dhcpv6-stateless", ErrInvalid, net, n.IPv6Mode)
	}
	sub, err := f.subnet(net)
	if err != nil {
		return err
	}
	switch {
	case !sub.CIDR.Addr().Is6():
		return fmt.Errorf("%w: network %q: ipv6_mode on an IPv4 network", ErrInvalid, net)
	case !n.DHCP:
		return fmt.Errorf("%w: network %q: ipv6_mode needs dhcp (its dnsmasq sends the router advertisements)", ErrInvalid, net)
	case f.autoAddress(net) && sub.CIDR.Bits() != 64:
		return fmt.Errorf("%w: network %q: ipv6_mode %s needs a /64 (SLAAC)", ErrInvalid, net, n.IPv6Mode)
	}
	if !f.autoAddress(net) {
		return nil
	}
	for _, name := range f.InstanceNames() {
		for i, p := range f.Instances[name].Ports {
			if p.Network != net {
				continue
			}
			mac, err := f.portMAC(name, i)
			if err != nil {
				return err
			}
			if want := network.SLAACAddress(sub.CIDR, mac); p.IP != want.String() {
				return fmt.Errorf("%w: instance %q port %d: on %s network %q the port's address is the EUI-64 of its MAC, %s (leave ip out)", ErrInvalid, name, i, n.IPv6Mode, net, want)
			}
		}
	}
	return nil
}

// validateDHCP checks the DHCP port of network net: a host address of the
// subnet that is neither the gateway nor a port's; and its ipv6_mode.
func (f *File) validateDHCP(net string) error {
	if err := f.validateIPv6Mode(net); err != nil {
		return err
	}
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
// server and IPv6 modes, as Nova's subnet meta says it (dhcp_server,
// ipv6_address_mode, with Neutron's ipv6_ra_mode alike), and adds the
// host route to the metadata service through the DHCP port, which
// instances that configure no DHCP client (application instances,
// configured by the Driver) need to reach it.
func (f *File) dhcpMeta(net string, sub *network.Subnet) error {
	if !f.Networks[net].DHCP {
		return nil
	}
	sub.IPv6AddressMode = f.Networks[net].IPv6Mode
	sub.IPv6RAMode = f.Networks[net].IPv6Mode
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
