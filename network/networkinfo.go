package network

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// ParseNetworkInfo parses Nova's network_info (the JSON list of VIFs that
// Nova gives a compute driver, nova.network.model.NetworkInfo) into VIFs,
// in order. It also accepts that list encoded as a JSON string, as Nova
// stores it in its instance info cache.
//
// From each VIF it reads id, address, type, devname, ovs_interfaceid,
// details (ovs_hybrid_plug, port_filter, bridge_name) and network: bridge,
// id, meta (mtu, bridge_interface, vlan with should_create_vlan) and
// subnets: cidr, ips (with their floating_ips), gateway, dns, routes
// (each {"address": …}) and meta (dhcp_server, enable_dhcp,
// ipv6_address_mode, ipv6_ra_mode). A subnet whose cidr is null and that
// holds nothing else is kept as a [Subnet.Placeholder]. Nova's loose
// types are accepted: numbers and booleans as strings, nulls. Unknown
// fields are ignored.
//
// A malformed VIF does not spoil the others: Nova writes them to the
// guest's metadata, and ParseNetworkInfo returns them, every one passing
// [ValidateVIFs], with a [*NetworkInfoError] that names each VIF it left
// out (a malformed one, or one that repeats an earlier VIF's port ID, MAC
// or device names). A caller that wants all or nothing treats any error
// as fatal; one that wants Nova's behaviour uses the VIFs and reports the
// error. Every error wraps [ErrInvalidVIF]; when the document itself is
// not a JSON list, the VIFs are nil.
func ParseNetworkInfo(data []byte) ([]VIF, error) {
	data = bytes.TrimSpace(data)
	if len(data) > 0 && data[0] == '"' {
		var s string
		if err := json.Unmarshal(data, &s); err != nil {
			return nil, fmt.Errorf("%w: network_info: %w", ErrInvalidVIF, err)
		}
		data = bytes.TrimSpace([]byte(s))
	}
	var raw []json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("%w: network_info: %w", ErrInvalidVIF, err)
	}
	vifs := make([]VIF, 0, len(raw))
	var skipped []SkippedVIF
	for i, r := range raw {
		var nv niVIF
		v, err := VIF{}, json.Unmarshal(r, &nv)
		if err == nil {
			v, err = nv.vif()
		}
		if err == nil {
			err = ValidateVIFs(append(slices.Clip(vifs), v))
		} else {
			err = fmt.Errorf("%w %s: %s", ErrInvalidVIF, nv.ID, err.Error())
		}
		if err != nil {
			skipped = append(skipped, SkippedVIF{Index: i, ID: nv.ID, Err: err})
			continue
		}
		vifs = append(vifs, v)
	}
	if len(skipped) > 0 {
		return vifs, &NetworkInfoError{Skipped: skipped}
	}
	return vifs, nil
}

// NetworkInfoError reports the VIFs of a network_info that
// [ParseNetworkInfo] left out. It matches [ErrInvalidVIF] (and the class
// of each VIF's error) with errors.Is.
type NetworkInfoError struct {
	// Skipped are the VIFs left out, in list order.
	Skipped []SkippedVIF
}

// SkippedVIF is a VIF that [ParseNetworkInfo] left out.
type SkippedVIF struct {
	// Index is the VIF's position in network_info, from 0.
	Index int
	// ID is its port ID as given (possibly empty).
	ID string
	// Err says what is wrong with it; it wraps [ErrInvalidVIF].
	Err error
}

func (e *NetworkInfoError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "network_info: %d VIF(s) left out", len(e.Skipped))
	for _, s := range e.Skipped {
		fmt.Fprintf(&b, "; VIF %d (%q): %s", s.Index, s.ID, s.Err)
	}
	return b.String()
}

// Unwrap returns the error of every VIF left out.
func (e *NetworkInfoError) Unwrap() []error {
	out := make([]error, len(e.Skipped))
	for i, s := range e.Skipped {
		out[i] = s.Err
	}
	return out
}

type niAddr struct {
	Address string `json:"address"`
}

type niFixedIP struct {
	Address     string   `json:"address"`
	FloatingIPs []niAddr `json:"floating_ips"`
}

type niSubnet struct {
	CIDR    *string     `json:"cidr"`
	IPs     []niFixedIP `json:"ips"`
	Gateway *niAddr     `json:"gateway"`
	DNS     []niAddr    `json:"dns"`
	Routes  []struct {
		CIDR    string  `json:"cidr"`
		Gateway *niAddr `json:"gateway"`
	} `json:"routes"`
	Meta struct {
		DHCPServer      *string  `json:"dhcp_server"`
		EnableDHCP      flexBool `json:"enable_dhcp"`
		IPv6AddressMode *string  `json:"ipv6_address_mode"`
		IPv6RAMode      *string  `json:"ipv6_ra_mode"`
	} `json:"meta"`
}

type niVIF struct {
	ID             string  `json:"id"`
	Address        string  `json:"address"`
	Type           string  `json:"type"`
	DevName        string  `json:"devname"`
	OVSInterfaceID *string `json:"ovs_interfaceid"`
	Details        struct {
		OVSHybridPlug flexBool `json:"ovs_hybrid_plug"`
		PortFilter    flexBool `json:"port_filter"`
		BridgeName    string   `json:"bridge_name"`
	} `json:"details"`
	Network *struct {
		ID      flexString `json:"id"`
		Bridge  string     `json:"bridge"`
		Subnets []niSubnet `json:"subnets"`
		Meta    struct {
			MTU              flexInt  `json:"mtu"`
			VLAN             flexInt  `json:"vlan"`
			ShouldCreateVLAN flexBool `json:"should_create_vlan"`
			BridgeInterface  string   `json:"bridge_interface"`
		} `json:"meta"`
	} `json:"network"`
}

func (nv niVIF) vif() (VIF, error) {
	v := VIF{
		ID: nv.ID, Type: VIFType(nv.Type), DevName: nv.DevName,
		HybridPlug: bool(nv.Details.OVSHybridPlug), PortFilter: bool(nv.Details.PortFilter),
		Bridge: nv.Details.BridgeName,
	}
	if nv.OVSInterfaceID != nil {
		v.OVSInterfaceID = *nv.OVSInterfaceID
	}
	if nv.Address != "" {
		m, err := ParseMAC(nv.Address)
		if err != nil {
			return VIF{}, fmt.Errorf("address %q is not a MAC", nv.Address)
		}
		v.Address = m
	}
	n := nv.Network
	if n == nil {
		return v, nil
	}
	v.NetworkID = string(n.ID)
	if n.Bridge != "" {
		v.Bridge = n.Bridge
	}
	v.MTU = int(n.Meta.MTU)
	v.BridgeInterface = n.Meta.BridgeInterface
	if n.Meta.ShouldCreateVLAN {
		v.VLAN = int(n.Meta.VLAN)
	}
	for _, ns := range n.Subnets {
		s, err := ns.subnet()
		if err != nil {
			return VIF{}, err
		}
		v.Subnets = append(v.Subnets, s)
	}
	return v, nil
}

// addr parses an address; empty means none.
func addr(what, s string) (netip.Addr, error) {
	if s == "" {
		return netip.Addr{}, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("%s %q: %w", what, s, err)
	}
	return a, nil
}

func (ns niSubnet) subnet() (Subnet, error) {
	var s Subnet
	var err error
	if ns.CIDR != nil {
		if s.CIDR, err = netip.ParsePrefix(*ns.CIDR); err != nil {
			return Subnet{}, fmt.Errorf("subnet cidr %q: %w", *ns.CIDR, err)
		}
	}
	if ns.Gateway != nil {
		if s.Gateway, err = addr("gateway", ns.Gateway.Address); err != nil {
			return Subnet{}, err
		}
	}
	for _, ip := range ns.IPs {
		a, err := netip.ParseAddr(ip.Address)
		if err != nil {
			return Subnet{}, fmt.Errorf("ip %q: %w", ip.Address, err)
		}
		s.IPs = append(s.IPs, a)
		for _, f := range ip.FloatingIPs {
			fa, err := netip.ParseAddr(f.Address)
			if err != nil {
				return Subnet{}, fmt.Errorf("floating ip %q: %w", f.Address, err)
			}
			s.FloatingIPs = append(s.FloatingIPs, FloatingIP{Address: fa, FixedIP: a})
		}
	}
	for _, d := range ns.DNS {
		a, err := netip.ParseAddr(d.Address)
		if err != nil {
			return Subnet{}, fmt.Errorf("dns %q: %w", d.Address, err)
		}
		s.DNS = append(s.DNS, a)
	}
	for _, r := range ns.Routes {
		var rt Route
		if rt.Dest, err = netip.ParsePrefix(r.CIDR); err != nil {
			return Subnet{}, fmt.Errorf("route cidr %q: %w", r.CIDR, err)
		}
		if r.Gateway != nil {
			if rt.Gateway, err = addr("route gateway", r.Gateway.Address); err != nil {
				return Subnet{}, err
			}
		}
		s.Routes = append(s.Routes, rt)
	}
	m := ns.Meta
	if m.DHCPServer != nil {
		if s.DHCPServer, err = addr("dhcp_server", *m.DHCPServer); err != nil {
			return Subnet{}, err
		}
	}
	s.EnableDHCP = bool(m.EnableDHCP)
	if m.IPv6AddressMode != nil {
		s.IPv6AddressMode = *m.IPv6AddressMode
	}
	if m.IPv6RAMode != nil {
		s.IPv6RAMode = *m.IPv6RAMode
	}
	if ns.CIDR == nil && !s.Placeholder() {
		return Subnet{}, fmt.Errorf("a subnet without a cidr holds addresses or meta")
	}
	return s, nil
}

// flexInt is a JSON number, a string holding one, or null (0).
type flexInt int

func (f *flexInt) UnmarshalJSON(b []byte) error {
	s := string(bytes.Trim(b, `"`))
	if s == "null" || s == "" {
		*f = 0
		return nil
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return fmt.Errorf("not an integer: %s", b)
	}
	*f = flexInt(n)
	return nil
}

// flexBool is a JSON boolean, a string holding one ("true", "True"...),
// or null (false).
type flexBool bool

func (f *flexBool) UnmarshalJSON(b []byte) error {
	s := string(bytes.Trim(b, `"`))
	if s == "null" || s == "" {
		*f = false
		return nil
	}
	v, err := strconv.ParseBool(s)
	if err != nil {
		return fmt.Errorf("not a boolean: %s", b)
	}
	*f = flexBool(v)
	return nil
}

// flexString is a JSON string, a number (its text), or null ("").
type flexString string

func (f *flexString) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*f = ""
		return nil
	}
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*f = flexString(s)
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("not a string or number: %s", b)
	}
	*f = flexString(n.String())
	return nil
}
