package network

import (
	"fmt"
	"net/netip"
)

// VIFType selects the driver that plugs a VIF. The values are Nova's
// (nova.network.model VIF_TYPE_*).
type VIFType string

// VIF types.
const (
	// VIFTypeOVS is a port on an Open vSwitch integration bridge, plugged
	// directly or through a per-port Linux bridge (hybrid plug).
	VIFTypeOVS VIFType = "ovs"
	// VIFTypeBridge is a port on a Linux bridge (Neutron's Linux bridge
	// agent, or nova-network).
	VIFTypeBridge VIFType = "bridge"
)

// Subnet is one subnet a VIF is on.
type Subnet struct {
	// CIDR is the subnet's prefix, with the host bits zero.
	CIDR netip.Prefix `json:"cidr"`
	// Gateway is the subnet's router; zero means none.
	Gateway netip.Addr `json:"gateway,omitzero"`
	// IPs are the fixed IPs of the VIF in this subnet.
	IPs []netip.Addr `json:"ips,omitempty"`
	// DNS are the subnet's name servers.
	DNS []netip.Addr `json:"dns,omitempty"`
	// Routes are host routes pushed into the instance.
	Routes []Route `json:"routes,omitempty"`
	// FloatingIPs are the floating IPs bound to the fixed IPs, in Nova's
	// order (by fixed IP as IPs lists them, then as bound): Nova's
	// FixedIP floating_ips, for the guest's metadata (EC2 public-ipv4).
	// Binding them on the host is package floatingip's job.
	FloatingIPs []FloatingIP `json:"floating_ips,omitempty"`

	// Subnet meta, as Nova's network_info carries it (subnet "meta").

	// DHCPServer is the subnet's DHCP server (Nova's subnet meta
	// dhcp_server, set when Neutron's enable_dhcp is on): instances on
	// the subnet get their address by DHCP; zero means none.
	DHCPServer netip.Addr `json:"dhcp_server,omitzero"`
	// EnableDHCP is Neutron's enable_dhcp, which Nova (from 2024.1) puts
	// in the subnet meta even when no DHCP port exists (OVN's native
	// DHCP): it means DHCP as DHCPServer does.
	EnableDHCP bool `json:"enable_dhcp,omitempty"`
	// IPv6AddressMode and IPv6RAMode are Neutron's ipv6_address_mode and
	// ipv6_ra_mode: [IPv6SLAAC], [IPv6DHCPStateful], [IPv6DHCPStateless],
	// or empty; IPv6 subnets only. Nova carries the address mode; the RA
	// mode is kept when network_info has it.
	IPv6AddressMode string `json:"ipv6_address_mode,omitempty"`
	IPv6RAMode      string `json:"ipv6_ra_mode,omitempty"`
}

// IPv6 address and RA modes of a subnet (Neutron's values).
const (
	IPv6SLAAC         = "slaac"
	IPv6DHCPStateful  = "dhcpv6-stateful"
	IPv6DHCPStateless = "dhcpv6-stateless"
)

// FloatingIP is a floating IP bound to a fixed IP of its subnet.
type FloatingIP struct {
	// Address is the floating IP.
	Address netip.Addr `json:"address"`
	// FixedIP is the fixed IP it is bound to: one of the subnet's IPs.
	FixedIP netip.Addr `json:"fixed_ip"`
}

// Placeholder reports whether s is Nova's subnet without a CIDR: a
// subnet that holds nothing (an empty CIDR and no other field). It
// counts as a subnet where Nova counts subnets (the interfaceN numbers
// of network_data.json) and configures nothing.
func (s Subnet) Placeholder() bool {
	return !s.CIDR.IsValid() && s.isEmpty()
}

func (s Subnet) isEmpty() bool {
	return !s.Gateway.IsValid() && len(s.IPs) == 0 && len(s.DNS) == 0 && len(s.Routes) == 0 &&
		len(s.FloatingIPs) == 0 && !s.DHCPServer.IsValid() && !s.EnableDHCP &&
		s.IPv6AddressMode == "" && s.IPv6RAMode == ""
}

// Route is a host route pushed into the instance.
type Route struct {
	Dest    netip.Prefix `json:"dest"`
	Gateway netip.Addr   `json:"gateway,omitzero"`
}

// VIF is a virtual interface of an instance: a Neutron port, say. Its JSON
// form is this package's own (MAC as text, addresses as strings); use
// [ParseNetworkInfo] to read Nova's network_info.
type VIF struct {
	// ID is the port UUID; host device names derive from it (see
	// [DeviceNames]).
	ID string `json:"id"`
	// Address is the guest MAC; nil lets the kernel choose.
	Address MAC `json:"address,omitempty"`
	// Type selects the driver.
	Type VIFType `json:"type"`
	// HybridPlug asks an Open vSwitch driver for a per-port Linux bridge
	// between the instance and the integration bridge (Nova's
	// ovs_hybrid_plug).
	HybridPlug bool `json:"hybrid_plug,omitempty"`
	// PortFilter reports that the network back end filters the port
	// itself (Nova's port_filter).
	PortFilter bool `json:"port_filter,omitempty"`
	// Bridge is the bridge the port goes on: the integration bridge for
	// Open vSwitch, the Linux bridge for the bridge drivers.
	Bridge string `json:"bridge"`
	// BridgeInterface is a host device to enslave to Bridge (nova-network's
	// bridge_interface); with VLAN set, the parent of the VLAN device.
	BridgeInterface string `json:"bridge_interface,omitempty"`
	// NetworkID is the network's ID, for information.
	NetworkID string `json:"network_id,omitempty"`
	// DevName is the host device name Nova chose ("tap…"), for information;
	// drivers derive names with [DeviceNames].
	DevName string `json:"devname,omitempty"`
	// OVSInterfaceID is the external-ids:iface-id of the Open vSwitch port
	// (Nova's ovs_interfaceid); empty means ID.
	OVSInterfaceID string `json:"ovs_interface_id,omitempty"`
	// MTU of the network; 0 leaves the kernel's default.
	MTU int `json:"mtu,omitempty"`
	// Subnets the VIF is on.
	Subnets []Subnet `json:"subnets,omitempty"`
	// VLAN is nova-network VLAN mode's VLAN ID; 0 means none.
	VLAN int `json:"vlan,omitempty"`
}

// Validate checks that the VIF is well formed: a port ID usable in device
// names, a type, a unicast MAC (or none), an MTU in range (at least 1280
// with IPv6), valid bridge names, a VLAN ID in range, and subnets whose
// CIDRs are canonical and whose IPs, gateway, DNS servers, routes and
// DHCP server are valid addresses of the subnet's family, with every
// fixed IP inside its subnet, every floating IP bound to one of them, and
// IPv6 modes known and on IPv6 subnets only; a subnet without a CIDR
// must be a [Subnet.Placeholder]. Every error wraps [ErrInvalidVIF] (a bridge name over the limit
// also [ErrDeviceNameTooLong]).
func (v VIF) Validate() error {
	if _, err := DeviceNames(v.ID); err != nil {
		return err
	}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w %s: %s", ErrInvalidVIF, v.ID, fmt.Sprintf(format, args...))
	}
	if v.Type == "" {
		return bad("empty type")
	}
	if err := v.Address.validate(); err != nil {
		return bad("%v", err)
	}
	if v.MTU < 0 || (v.MTU > 0 && v.MTU < 68) || v.MTU > 65535 {
		return bad("MTU %d out of range", v.MTU)
	}
	if v.VLAN < 0 || v.VLAN > 4094 {
		return bad("VLAN %d out of range", v.VLAN)
	}
	for _, n := range []string{v.Bridge, v.BridgeInterface} {
		if n == "" {
			continue
		}
		if err := ValidateDeviceName(n); err != nil {
			return fmt.Errorf("VIF %s: %w", v.ID, err)
		}
	}
	for i, s := range v.Subnets {
		if err := s.validate(); err != nil {
			return bad("subnet %d: %v", i, err)
		}
		if s.CIDR.Addr().Is6() && v.MTU > 0 && v.MTU < 1280 {
			return bad("MTU %d is below IPv6's minimum 1280", v.MTU)
		}
	}
	return nil
}

func (s Subnet) validate() error {
	if s.Placeholder() {
		return nil
	}
	if !s.CIDR.IsValid() {
		return fmt.Errorf("missing or malformed CIDR")
	}
	if s.CIDR.Masked() != s.CIDR {
		return fmt.Errorf("CIDR %s has host bits set (want %s)", s.CIDR, s.CIDR.Masked())
	}
	v6 := s.CIDR.Addr().Is6()
	sameFamily := func(a netip.Addr) bool { return a.IsValid() && a.Is6() == v6 && !a.Is4In6() }
	if s.Gateway.IsValid() && !sameFamily(s.Gateway) {
		return fmt.Errorf("gateway %s is not in the family of %s", s.Gateway, s.CIDR)
	}
	seen := map[netip.Addr]bool{}
	for _, ip := range s.IPs {
		if !s.CIDR.Contains(ip) || ip.Zone() != "" {
			return fmt.Errorf("IP %s is outside subnet %s", ip, s.CIDR)
		}
		if seen[ip] {
			return fmt.Errorf("IP %s listed twice", ip)
		}
		seen[ip] = true
	}
	for _, d := range s.DNS {
		if !d.IsValid() {
			return fmt.Errorf("malformed DNS server")
		}
	}
	if s.DHCPServer.IsValid() && !sameFamily(s.DHCPServer) {
		return fmt.Errorf("DHCP server %s is not in the family of %s", s.DHCPServer, s.CIDR)
	}
	for _, m := range []struct{ name, mode string }{{"address", s.IPv6AddressMode}, {"RA", s.IPv6RAMode}} {
		switch m.mode {
		case "":
		case IPv6SLAAC, IPv6DHCPStateful, IPv6DHCPStateless:
			if !v6 {
				return fmt.Errorf("IPv6 %s mode %q on IPv4 subnet %s", m.name, m.mode, s.CIDR)
			}
		default:
			return fmt.Errorf("IPv6 %s mode %q is none of %s, %s, %s", m.name, m.mode, IPv6SLAAC, IPv6DHCPStateful, IPv6DHCPStateless)
		}
	}
	floating := map[netip.Addr]bool{}
	for _, f := range s.FloatingIPs {
		if !f.Address.IsValid() || f.Address.Zone() != "" {
			return fmt.Errorf("malformed floating IP %s", f.Address)
		}
		if !seen[f.FixedIP] {
			return fmt.Errorf("floating IP %s is bound to %s, which is not a fixed IP of %s", f.Address, f.FixedIP, s.CIDR)
		}
		if floating[f.Address] {
			return fmt.Errorf("floating IP %s listed twice", f.Address)
		}
		floating[f.Address] = true
	}
	for _, r := range s.Routes {
		if !r.Dest.IsValid() || r.Dest.Masked() != r.Dest {
			return fmt.Errorf("route destination %s is malformed or has host bits set", r.Dest)
		}
		if r.Dest.Addr().Is6() != v6 {
			return fmt.Errorf("route %s is not in the family of %s", r.Dest, s.CIDR)
		}
		if r.Gateway.IsValid() && !sameFamily(r.Gateway) {
			return fmt.Errorf("route %s: gateway %s is not in the family of %s", r.Dest, r.Gateway, s.CIDR)
		}
	}
	return nil
}

// ValidateVIFs validates each VIF and checks that no two VIFs share a port
// ID, a MAC or (after truncation to device names) a host device name. Every
// error wraps [ErrInvalidVIF].
func ValidateVIFs(vifs []VIF) error {
	ids := map[string]bool{}
	prefixes := map[string]string{}
	macs := map[string]string{}
	for _, v := range vifs {
		if err := v.Validate(); err != nil {
			return err
		}
		if ids[v.ID] {
			return fmt.Errorf("%w: port ID %s listed twice", ErrInvalidVIF, v.ID)
		}
		ids[v.ID] = true
		d, _ := DeviceNames(v.ID)
		if other, ok := prefixes[d.Tap]; ok {
			return fmt.Errorf("%w: ports %s and %s share the device name %s", ErrInvalidVIF, other, v.ID, d.Tap)
		}
		prefixes[d.Tap] = v.ID
		if len(v.Address) > 0 {
			if other, ok := macs[v.Address.String()]; ok {
				return fmt.Errorf("%w: ports %s and %s share the MAC %s", ErrInvalidVIF, other, v.ID, v.Address)
			}
			macs[v.Address.String()] = v.ID
		}
	}
	return nil
}

// Validate checks that the target names a namespace and a valid guest
// device name. Errors wrap [ErrInvalidTarget].
func (t Target) Validate() error {
	if t.NetNS == "" {
		return fmt.Errorf("%w: empty namespace path", ErrInvalidTarget)
	}
	if err := ValidateDeviceName(t.IfName); err != nil {
		return fmt.Errorf("%w: %s", ErrInvalidTarget, err.Error())
	}
	return nil
}

// Dynamic reports whether an instance gets its address on the subnet by
// itself, as Nova's network_data.json tells its guest: by DHCP (see
// [Subnet.DHCP]), SLAAC or DHCPv6 (an IPv6 address mode), rather than
// statically.
func (s Subnet) Dynamic() bool {
	if s.CIDR.Addr().Is6() && s.IPv6AddressMode != "" {
		return true
	}
	return s.DHCP()
}

// DHCP reports whether the subnet's meta says DHCP as Nova reads it: a
// DHCP server, or enable_dhcp.
func (s Subnet) DHCP() bool { return s.DHCPServer.IsValid() || s.EnableDHCP }
