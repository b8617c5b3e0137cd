package lab

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/netip"

	"github.com/dockervisor/dockervisor/network"
	"github.com/dockervisor/dockervisor/network/floatingip"
)

// NetnsName returns the name of the lab's private host network namespace
// (under /run/netns), where its bridges live.
func NetnsName(lab string) string { return "dvlab-" + lab }

// NetnsPath returns the path of the lab's host namespace.
func NetnsPath(lab string) string { return "/run/netns/" + NetnsName(lab) }

// HasNetworks reports whether the lab has networks, and so a host namespace.
func (f *File) HasNetworks() bool { return len(f.Networks) > 0 }

func hash(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
}

// BridgeName returns the Linux bridge of a lab network: "dvl" and 11 hex
// digits of a hash of the lab and network names (14 bytes, within the
// kernel's limit, unique per lab and network).
func (f *File) BridgeName(net string) string { return "dvl" + hash(f.Name, net)[:11] }

// OVSBridgeName returns the Open vSwitch bridge of a lab network of type
// ovs: "dvo" and 11 hex digits of a hash of the lab and network names.
func (f *File) OVSBridgeName(net string) string { return "dvo" + hash(f.Name, net)[:11] }

// HasOVS reports whether the lab has an Open vSwitch network, and so a
// private Open vSwitch in its namespace.
func (f *File) HasOVS() bool {
	for _, n := range f.Networks {
		if n.Type == NetworkOVS {
			return true
		}
	}
	return false
}

// PortID returns the deterministic port ID of an instance's i-th port, in
// UUID form; its first 11 characters name the host devices.
func (f *File) PortID(instance string, i int) string {
	h := hash(f.Name, instance, fmt.Sprint(i))
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

func (f *File) subnet(net string) (network.Subnet, error) {
	n := f.Networks[net]
	pfx, err := netip.ParsePrefix(n.CIDR)
	if err != nil || pfx != pfx.Masked() {
		return network.Subnet{}, fmt.Errorf("%w: network %q: cidr %q: want a network prefix such as 10.10.1.0/24", ErrInvalid, net, n.CIDR)
	}
	s := network.Subnet{CIDR: pfx}
	if n.Gateway != "" {
		if s.Gateway, err = netip.ParseAddr(n.Gateway); err != nil || !pfx.Contains(s.Gateway) {
			return s, fmt.Errorf("%w: network %q: gateway %q not in %s", ErrInvalid, net, n.Gateway, pfx)
		}
	}
	return s, nil
}

// derivedMAC is the MAC of a port without one in the file: Nova's fa:16:3e
// prefix and three bytes of a hash of the port ID.
func derivedMAC(id string) network.MAC {
	mac := network.MAC{0xfa, 0x16, 0x3e, 0, 0, 0}
	b, _ := hex.DecodeString(hash("mac", id)[:6])
	copy(mac[3:], b)
	return mac
}

// portMAC returns the MAC of the named instance's i-th port: the file's,
// or one derived from the port ID.
func (f *File) portMAC(name string, i int) (network.MAC, error) {
	p := f.Instances[name].Ports[i]
	if p.MAC == "" {
		return derivedMAC(f.PortID(name, i)), nil
	}
	mac, err := network.ParseMAC(p.MAC)
	if err != nil {
		return nil, fmt.Errorf("%w: instance %q port %d: %w", ErrInvalid, name, i, err)
	}
	return mac, nil
}

// vifs returns the VIFs of the named instance's ports.
func (f *File) vifs(name string) ([]network.VIF, error) {
	var vifs []network.VIF
	for i, p := range f.Instances[name].Ports {
		n, ok := f.Networks[p.Network]
		if !ok {
			return nil, fmt.Errorf("%w: instance %q port %d: no network %q", ErrInvalid, name, i, p.Network)
		}
		sub, err := f.subnet(p.Network)
		if err != nil {
			return nil, err
		}
		ip, err := netip.ParseAddr(p.IP)
		if err != nil || !sub.CIDR.Contains(ip) {
			return nil, fmt.Errorf("%w: instance %q port %d: ip %q not in %s", ErrInvalid, name, i, p.IP, sub.CIDR)
		}
		sub.IPs = []netip.Addr{ip}
		if err := f.dhcpMeta(p.Network, &sub); err != nil {
			return nil, err
		}
		id := f.PortID(name, i)
		mac, err := f.portMAC(name, i)
		if err != nil {
			return nil, err
		}
		vif := network.VIF{
			ID:        id,
			Address:   mac,
			Type:      network.VIFTypeBridge,
			Bridge:    f.BridgeName(p.Network),
			NetworkID: f.NetworkID(p.Network),
			MTU:       n.MTU,
			Subnets:   []network.Subnet{sub},
		}
		if n.Type == NetworkOVS {
			// Hybrid plug: the per-port Linux bridge is where security
			// groups are enforced.
			vif.Type, vif.HybridPlug, vif.Bridge = network.VIFTypeOVS, true, f.OVSBridgeName(p.Network)
		}
		vifs = append(vifs, vif)
	}
	if err := network.ValidateVIFs(vifs); err != nil {
		return nil, fmt.Errorf("%w: instance %q: %w", ErrInvalid, name, err)
	}
	return vifs, nil
}

// NetworkStatus is the network side of a lab as NetStatus reports it, read
// from the kernel and the lab's switch.
type NetworkStatus struct {
	Netns          string               `json:"netns,omitempty"`
	NetnsExists    bool                 `json:"netns_exists"`
	ExtNetns       string               `json:"ext_netns,omitempty"`
	ExtNetnsExists bool                 `json:"ext_netns_exists,omitempty"`
	OVSDir         string               `json:"ovs_dir,omitempty"`
	OVSRunning     bool                 `json:"ovs_running,omitempty"`
	SecurityGroups []string             `json:"security_groups,omitempty"`
	FilteredPorts  int                  `json:"filtered_ports"`
	FloatingIPs    []floatingip.Binding `json:"floating_ips"` // bound in the kernel
	// DHCP are the networks' DHCP servers, MetadataDir the lab's metadata
	// service.
	DHCP              []DHCPStatus `json:"dhcp,omitempty"`
	MetadataDir       string       `json:"metadata_dir,omitempty"`
	MetadataRunning   bool         `json:"metadata_running,omitempty"`
	MetadataInstances int          `json:"metadata_instances,omitempty"`
}

// DHCPStatus is a lab network's DHCP server, read from its directory.
type DHCPStatus struct {
	Network string `json:"network"`
	Netns   string `json:"netns"`
	Running bool   `json:"running"`
	Hosts   int    `json:"hosts"`
	Leases  int    `json:"leases"`
}

// Service is a lab network's services as the state file records them:
// the service namespace, its port, and the DHCP server's directory.
type Service struct {
	Network string      `json:"network"`
	Netns   string      `json:"netns"`
	Port    network.VIF `json:"port"`
	DHCPDir string      `json:"dhcp_dir"`
}
