package network

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
)

// VIFType selects the driver that plugs a VIF.
type VIFType string

// VIF types.
const (
	// VIFTypeOVS is a port on an Open vSwitch integration bridge.
	VIFTypeOVS VIFType = "ovs"
	// VIFTypeBridge is a port on a Linux bridge (Linux bridge agent or
	// nova-network).
	VIFTypeBridge VIFType = "bridge"
)

// Error classes of the network package.
var (
	// ErrUnsupportedVIFType means no driver handles the VIF's type.
	ErrUnsupportedVIFType = errors.New("network: unsupported VIF type")
	// ErrInvalidVIF means the VIF description is incomplete or malformed.
	ErrInvalidVIF = errors.New("network: invalid VIF")
	// ErrNamespaceGone means the instance's network namespace no longer
	// exists (its process died).
	ErrNamespaceGone = errors.New("network: namespace no longer exists")
)

// Subnet is one subnet a VIF is on.
type Subnet struct {
	CIDR    netip.Prefix `json:"cidr"`
	Gateway netip.Addr   `json:"gateway,omitzero"`
	IPs     []netip.Addr `json:"ips,omitempty"` // fixed IPs of the VIF in this subnet
	DNS     []netip.Addr `json:"dns,omitempty"`
	Routes  []Route      `json:"routes,omitempty"` // host routes
}

// Route is a host route pushed into the instance.
type Route struct {
	Dest    netip.Prefix `json:"dest"`
	Gateway netip.Addr   `json:"gateway,omitzero"`
}

// VIF is a virtual interface of an instance: a Neutron port, say.
type VIF struct {
	ID             string           `json:"id"` // port UUID; device names derive from it
	Address        net.HardwareAddr `json:"address"`
	Type           VIFType          `json:"type"`
	HybridPlug     bool             `json:"hybrid_plug,omitempty"`
	Bridge         string           `json:"bridge"`
	OVSInterfaceID string           `json:"ovs_interface_id,omitempty"`
	MTU            int              `json:"mtu,omitempty"`
	Subnets        []Subnet         `json:"subnets,omitempty"`
	VLAN           int              `json:"vlan,omitempty"` // nova-network VLAN mode; 0 means none
}

// Validate checks that the VIF has what every driver needs.
func (v VIF) Validate() error {
	switch {
	case v.ID == "":
		return fmt.Errorf("%w: empty ID", ErrInvalidVIF)
	case v.Type == "":
		return fmt.Errorf("%w %s: empty type", ErrInvalidVIF, v.ID)
	case len(v.Address) != 0 && len(v.Address) != 6:
		return fmt.Errorf("%w %s: MAC address %s is not 48 bits", ErrInvalidVIF, v.ID, v.Address)
	case v.MTU < 0 || (v.MTU > 0 && v.MTU < 68) || v.MTU > 65535:
		return fmt.Errorf("%w %s: MTU %d out of range", ErrInvalidVIF, v.ID, v.MTU)
	case v.VLAN < 0 || v.VLAN > 4094:
		return fmt.Errorf("%w %s: VLAN %d out of range", ErrInvalidVIF, v.ID, v.VLAN)
	}
	for _, s := range v.Subnets {
		for _, ip := range s.IPs {
			if !s.CIDR.Contains(ip) {
				return fmt.Errorf("%w %s: IP %s is outside subnet %s", ErrInvalidVIF, v.ID, ip, s.CIDR)
			}
		}
	}
	return nil
}
