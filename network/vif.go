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
	// DHCPServer is the subnet's DHCP server (Nova's subnet meta
	// dhcp_server, set when Neutron's enable_dhcp is on): instances on
	// the subnet get their address by DHCP; zero means none.
	DHCPServer netip.Addr `json:"dhcp_server,omitzero"`
	// IPv6AddressMode and IPv6RAMode are Neutron's ipv6_address_mode and
	// ipv6_ra_mode: "slaac", "dhcpv6-stateful", "dhcpv6-stateless", or
	// empty.
	IPv6AddressMode string `json:"ipv6_address_mode,omitempty"`
	IPv6RAMode      string `json:"ipv6_ra_mode,omitempty"`
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
// CIDRs are canonical and whose IPs, gateway, DNS servers and routes are
// valid addresses of the subnet's family, with every fixed IP inside its
// subnet. Every error wraps [ErrInvalidVIF] (a bridge name over the limit
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
// itself, as Nova's network_data.json tells its guest: by DHCP (a DHCP
// server), SLAAC or DHCPv6 (an IPv6 address mode), rather than statically.
func (s Subnet) Dynamic() bool {
	if s.CIDR.Addr().Is6() && s.IPv6AddressMode != "" {
		return true
	}
	return s.DHCPServer.IsValid()
}
