package network

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/netip"
	"strconv"
)

// ParseNetworkInfo parses Nova's network_info (the JSON list of VIFs that
// Nova gives a compute driver, nova.network.model.NetworkInfo) into VIFs,
// in order. It also accepts that list encoded as a JSON string, as Nova
// stores it in its instance info cache.
//
// From each VIF it reads id, address, type, devname, ovs_interfaceid,
// details (ovs_hybrid_plug, port_filter, bridge_name) and network: bridge,
// id, meta (mtu, bridge_interface, vlan with should_create_vlan) and
// subnets (cidr, ips, gateway, dns and routes, each {"address": …}). Nova's
// loose types are accepted: numbers and booleans as strings, nulls.
// Unknown fields are ignored. The result passes [ValidateVIFs]; every error
// wraps [ErrInvalidVIF].
func ParseNetworkInfo(data []byte) ([]VIF, error) {
	data = bytes.TrimSpace(data)
	if len(data) > 0 && data[0] == '"' {
		var s string
		if err := json.Unmarshal(data, &s); err != nil {
			return nil, fmt.Errorf("%w: network_info: %w", ErrInvalidVIF, err)
		}
		data = bytes.TrimSpace([]byte(s))
	}
	var in []niVIF
	if err := json.Unmarshal(data, &in); err != nil {
		return nil, fmt.Errorf("%w: network_info: %w", ErrInvalidVIF, err)
	}
	vifs := make([]VIF, 0, len(in))
	for i, nv := range in {
		v, err := nv.vif()
		if err != nil {
			return nil, fmt.Errorf("%w: network_info VIF %d (%q): %s", ErrInvalidVIF, i, nv.ID, err.Error())
		}
		vifs = append(vifs, v)
	}
	if err := ValidateVIFs(vifs); err != nil {
		return nil, err
	}
	return vifs, nil
}

type niAddr struct {
	Address string `json:"address"`
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
		Subnets []struct {
			CIDR    *string  `json:"cidr"`
			IPs     []niAddr `json:"ips"`
			Gateway *niAddr  `json:"gateway"`
			DNS     []niAddr `json:"dns"`
			Routes  []struct {
				CIDR    string  `json:"cidr"`
				Gateway *niAddr `json:"gateway"`
			} `json:"routes"`
		} `json:"subnets"`
		Meta struct {
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
		if ns.CIDR == nil {
			continue // Nova's empty placeholder subnet
		}
		var s Subnet
		var err error
		if s.CIDR, err = netip.ParsePrefix(*ns.CIDR); err != nil {
			return VIF{}, fmt.Errorf("subnet cidr %q: %w", *ns.CIDR, err)
		}
		if ns.Gateway != nil && ns.Gateway.Address != "" {
			if s.Gateway, err = netip.ParseAddr(ns.Gateway.Address); err != nil {
				return VIF{}, fmt.Errorf("gateway %q: %w", ns.Gateway.Address, err)
			}
		}
		for _, ip := range ns.IPs {
			a, err := netip.ParseAddr(ip.Address)
			if err != nil {
				return VIF{}, fmt.Errorf("ip %q: %w", ip.Address, err)
			}
			s.IPs = append(s.IPs, a)
		}
		for _, d := range ns.DNS {
			a, err := netip.ParseAddr(d.Address)
			if err != nil {
				return VIF{}, fmt.Errorf("dns %q: %w", d.Address, err)
			}
			s.DNS = append(s.DNS, a)
		}
		for _, r := range ns.Routes {
			var rt Route
			if rt.Dest, err = netip.ParsePrefix(r.CIDR); err != nil {
				return VIF{}, fmt.Errorf("route cidr %q: %w", r.CIDR, err)
			}
			if r.Gateway != nil && r.Gateway.Address != "" {
				if rt.Gateway, err = netip.ParseAddr(r.Gateway.Address); err != nil {
					return VIF{}, fmt.Errorf("route gateway %q: %w", r.Gateway.Address, err)
				}
			}
			s.Routes = append(s.Routes, rt)
		}
		v.Subnets = append(v.Subnets, s)
	}
	return v, nil
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
