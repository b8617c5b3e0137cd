package configdrive

import (
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"

	"github.com/dockervisor/dockervisor/network"
)

// NetworkData is network_data.json, as nova/virt/netutils.py's
// get_network_metadata writes it.
type NetworkData struct {
	Links    []Link    `json:"links"`
	Networks []Network `json:"networks"`
	Services []Service `json:"services"`
}

// Link is one interface of the guest.
type Link struct {
	ID                 string `json:"id"`
	VIFID              string `json:"vif_id"`
	Type               string `json:"type"`
	MTU                *int   `json:"mtu"`
	EthernetMACAddress string `json:"ethernet_mac_address"`
}

// Network is one IP network on a link: static ("ipv4", "ipv6") or with an
// IPv6 address mode ("ipv6_slaac", "ipv6_dhcpv6-stateful",
// "ipv6_dhcpv6-stateless"), with its address, routes and DNS servers; or
// DHCP ("ipv4_dhcp", "ipv6_dhcp"), with its ID, type, link and network
// only, as Nova writes them.
type Network struct {
	ID        string    `json:"id"`
	Type      string    `json:"type"`
	Link      string    `json:"link"`
	IPAddress string    `json:"ip_address"`
	Netmask   string    `json:"netmask"`
	Routes    []Route   `json:"routes"`
	NetworkID string    `json:"network_id"`
	Services  []Service `json:"services"`
}

// DHCP reports whether the network is a DHCP one, whose address the
// guest's DHCP client takes.
func (n Network) DHCP() bool { return strings.HasSuffix(n.Type, "_dhcp") }

// MarshalJSON writes a DHCP network in Nova's short form.
func (n Network) MarshalJSON() ([]byte, error) {
	type full Network
	if !n.DHCP() {
		return json.Marshal(full(n))
	}
	return json.Marshal(struct {
		ID        string `json:"id"`
		Type      string `json:"type"`
		Link      string `json:"link"`
		NetworkID string `json:"network_id"`
	}{n.ID, n.Type, n.Link, n.NetworkID})
}

// Route is a route of a Network; 0.0.0.0/0.0.0.0 (or ::/::) is the default.
type Route struct {
	Network string `json:"network"`
	Netmask string `json:"netmask"`
	Gateway string `json:"gateway"`
}

// Service is a network service, such as a DNS server.
type Service struct {
	Type    string `json:"type"`
	Address string `json:"address"`
}

// legacyExposedVIFTypes are the VIF types Nova writes as the link type;
// others are written as "phy" (nova/network/model.py).
var legacyExposedVIFTypes = map[network.VIFType]bool{
	"bridge": true, "dvs": true, "ethernet": true, "hw_veb": true, "hyperv": true,
	"ovs": true, "tap": true, "vhostuser": true, "vif": true,
}

// BuildNetworkData returns network_data.json for vifs as Nova builds it: one
// link per VIF with a subnet, one network for the first IPv4 and the first
// IPv6 subnet of each (static: the first fixed IP, the netmask, a default
// route through the gateway and the host routes), and the DNS servers as
// services. A link's ID is the VIF's DevName, or "interfaceN" by position
// as in Nova; a network's network_id is the VIF's NetworkID, or the
// subnet's CIDR when the VIF has none.
func BuildNetworkData(vifs []network.VIF) NetworkData {
	nd := NetworkData{Links: []Link{}, Networks: []Network{}, Services: []Service{}}
	netNum, ifcNum := -1, -1
	for _, v := range vifs {
		if len(v.Subnets) == 0 {
			continue
		}
		var v4, v6 *network.Subnet
		for i := range v.Subnets {
			s := &v.Subnets[i]
			switch {
			case s.CIDR.Addr().Is4() && v4 == nil:
				v4 = s
			case s.CIDR.Addr().Is6() && v6 == nil:
				v6 = s
			}
		}
		ifcNum++
		if v4 == nil && v6 == nil {
			continue
		}
		id := v.DevName
		if id == "" {
			id = fmt.Sprintf("interface%d", ifcNum)
		}
		l := Link{ID: id, VIFID: v.ID, Type: "phy", EthernetMACAddress: v.Address.String()}
		if legacyExposedVIFTypes[v.Type] {
			l.Type = string(v.Type)
		}
		// Nova writes no MTU for a link on a DHCP subnet: the DHCP server
		// gives it.
		if v.MTU > 0 && !slices.ContainsFunc(v.Subnets, func(s network.Subnet) bool { return s.DHCPServer.IsValid() }) {
			mtu := v.MTU
			l.MTU = &mtu
		}
		nd.Links = append(nd.Links, l)
		for _, s := range []*network.Subnet{v4, v6} {
			if s == nil || len(s.IPs) == 0 {
				continue
			}
			netNum++
			n := Network{
				ID:        fmt.Sprintf("network%d", netNum),
				Type:      "ipv4",
				Link:      l.ID,
				IPAddress: s.IPs[0].String(),
				Netmask:   netmask(s.CIDR),
				Routes:    []Route{},
				NetworkID: v.NetworkID,
				Services:  dnsServices(s),
			}
			if n.NetworkID == "" {
				n.NetworkID = s.CIDR.Masked().String()
			}
			if s.CIDR.Addr().Is6() {
				n.Type = "ipv6"
			}
			switch {
			case s.CIDR.Addr().Is6() && s.IPv6AddressMode != "":
				n.Type += "_" + s.IPv6AddressMode
			case s.DHCPServer.IsValid():
				n.Type += "_dhcp"
			}
			if s.Gateway.IsValid() {
				def := "0.0.0.0"
				if s.CIDR.Addr().Is6() {
					def = "::"
				}
				n.Routes = append(n.Routes, Route{Network: def, Netmask: def, Gateway: s.Gateway.String()})
			}
			for _, r := range s.Routes {
				gw := ""
				if r.Gateway.IsValid() {
					gw = r.Gateway.String()
				}
				n.Routes = append(n.Routes, Route{Network: r.Dest.Masked().Addr().String(), Netmask: netmask(r.Dest), Gateway: gw})
			}
			nd.Networks = append(nd.Networks, n)
			for _, svc := range n.Services {
				if !containsService(nd.Services, svc) {
					nd.Services = append(nd.Services, svc)
				}
			}
		}
	}
	return nd
}

func containsService(list []Service, s Service) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func dnsServices(s *network.Subnet) []Service {
	out := []Service{}
	for _, d := range s.DNS {
		out = append(out, Service{Type: "dns", Address: d.String()})
	}
	return out
}

// netmask writes a prefix's mask as Nova does: dotted quad for IPv4, an
// IPv6 address for IPv6.
func netmask(p netip.Prefix) string {
	bits := 32
	if p.Addr().Is6() {
		bits = 128
	}
	m := net.CIDRMask(p.Bits(), bits)
	a, _ := netip.AddrFromSlice(m)
	return a.String()
}
