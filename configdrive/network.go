package configdrive

import (
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

// Link is one interface of the guest. Empty strings are written as null,
// as Nova writes None.
type Link struct {
	ID                 string `json:"id"`
	VIFID              string `json:"vif_id"`
	Type               string `json:"type"`
	MTU                *int   `json:"mtu"`
	EthernetMACAddress string `json:"ethernet_mac_address"`
}

// MarshalJSON writes the link's members in Nova's order.
func (l Link) MarshalJSON() ([]byte, error) {
	return object{
		{"id", l.ID}, {"vif_id", nullable(l.VIFID)}, {"type", l.Type}, {"mtu", l.MTU},
		{"ethernet_mac_address", nullable(l.EthernetMACAddress)},
	}.MarshalJSON()
}

// Network is one IP network on a link: static ("ipv4", "ipv6") or with an
// IPv6 address mode ("ipv6_slaac", "ipv6_dhcpv6-stateful",
// "ipv6_dhcpv6-stateless"), with its address, routes and DNS servers; or
// DHCP ("ipv4_dhcp", "ipv6_dhcp"), with its ID, type, link and network
// only, as Nova writes them. An empty NetworkID is written as null.
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

// MarshalJSON writes the network's members in Nova's order, a DHCP
// network in Nova's short form.
func (n Network) MarshalJSON() ([]byte, error) {
	if n.DHCP() {
		return object{{"id", n.ID}, {"type", n.Type}, {"link", n.Link}, {"network_id", nullable(n.NetworkID)}}.MarshalJSON()
	}
	routes, services := n.Routes, n.Services
	if routes == nil {
		routes = []Route{}
	}
	if services == nil {
		services = []Service{}
	}
	return object{
		{"id", n.ID}, {"type", n.Type}, {"link", n.Link}, {"ip_address", n.IPAddress}, {"netmask", n.Netmask},
		{"routes", routes}, {"network_id", nullable(n.NetworkID)}, {"services", services},
	}.MarshalJSON()
}

// Route is a route of a Network; 0.0.0.0/0.0.0.0 (or ::/::) is the
// default. An empty Gateway is written as null.
type Route struct {
	Network string `json:"network"`
	Netmask string `json:"netmask"`
	Gateway string `json:"gateway"`
}

// MarshalJSON writes the route's members in Nova's order.
func (r Route) MarshalJSON() ([]byte, error) {
	return object{{"network", r.Network}, {"netmask", r.Netmask}, {"gateway", nullable(r.Gateway)}}.MarshalJSON()
}

// Service is a network service, such as a DNS server.
type Service struct {
	Type    string `json:"type"`
	Address string `json:"address"`
}

// legacyExposedVIFTypes are the VIF types Nova writes as the link type
// (nova.network.model.LEGACY_EXPOSED_VIF_TYPES); every other type,
// "ethernet" among them, is written as "phy".
var legacyExposedVIFTypes = []network.VIFType{"bridge", "dvs", "hw_veb", "hyperv", "ovs", "tap", "vhostuser", "vif"}

// LinkType returns the link type Nova writes for a VIF of type t: t
// itself for the VIF types Nova has always exposed (bridge, dvs, hw_veb,
// hyperv, ovs, tap, vhostuser, vif), "phy" for every other ("ethernet",
// "other", "vrouter"...).
func LinkType(t network.VIFType) string {
	if slices.Contains(legacyExposedVIFTypes, t) {
		return string(t)
	}
	return "phy"
}

// NetworkType returns the network type Nova writes for subnet s: with an
// IPv6 address mode, "ipv6_" and the mode; with DHCP (a DHCP server or
// enable_dhcp, [network.Subnet.DHCP]), "ipv4_dhcp" or "ipv6_dhcp";
// otherwise "ipv4" or "ipv6" (static).
func NetworkType(s network.Subnet) string {
	t := "ipv4"
	if s.CIDR.Addr().Is6() {
		t = "ipv6"
	}
	switch {
	case s.IPv6AddressMode != "":
		return t + "_" + s.IPv6AddressMode
	case s.DHCP():
		return t + "_dhcp"
	}
	return t
}

// BuildNetworkData returns network_data.json for vifs as Nova builds it
// (get_network_metadata).
//
// A VIF with at least one subnet (a [network.Subnet.Placeholder] too)
// takes the next interface number; it gets a link if it has an IPv4 or
// an IPv6 subnet. The link's ID is the VIF's DevName, or "interfaceN";
// its type is [LinkType]; its MTU is the VIF's, or null when the VIF has
// none or any of its subnets has a DHCP server (the server gives it).
//
// The first IPv4 and the first IPv6 subnet of the VIF, when they have
// fixed IPs, each give a network "networkN" of [NetworkType]: a DHCP
// network names its link and network only; the others hold the first
// fixed IP, the netmask, a default route through the gateway and the
// host routes, and the DNS servers. The DNS servers of every such subnet
// are the services, each once.
//
// vifs must be valid ([network.ValidateVIFs]; [Build] checks them).
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
		l := Link{ID: id, VIFID: v.ID, Type: LinkType(v.Type)}
		if len(v.Address) > 0 {
			l.EthernetMACAddress = v.Address.String()
		}
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
			nd.Networks = append(nd.Networks, subnetNetwork(v, *s, netNum, l.ID))
			// Nova adds a subnet's servers that the list lacks, in
			// order, without checking the subnet's own for repeats.
			var add []Service
			for _, svc := range dnsServices(*s) {
				if !slices.Contains(nd.Services, svc) {
					add = append(add, svc)
				}
			}
			nd.Services = append(nd.Services, add...)
		}
	}
	return nd
}

// subnetNetwork is Nova's _get_nets: the network of subnet s of VIF v.
func subnetNetwork(v network.VIF, s network.Subnet, num int, link string) Network {
	n := Network{ID: fmt.Sprintf("network%d", num), Type: NetworkType(s), Link: link, NetworkID: v.NetworkID}
	if n.DHCP() {
		return n
	}
	n.IPAddress = s.IPs[0].String()
	n.Netmask = netmask(s.CIDR)
	n.Routes = []Route{}
	n.Services = dnsServices(s)
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
	return n
}

func dnsServices(s network.Subnet) []Service {
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
