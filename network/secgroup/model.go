package secgroup

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/dockervisor/dockervisor/network"
)

// Direction is the direction of traffic a rule admits, seen from the
// instance.
type Direction string

// Directions.
const (
	// Ingress is traffic to the instance.
	Ingress Direction = "ingress"
	// Egress is traffic from the instance.
	Egress Direction = "egress"
)

// EtherType is the IP version a rule applies to.
type EtherType string

// Ether types, spelled as Neutron does.
const (
	IPv4 EtherType = "IPv4"
	IPv6 EtherType = "IPv6"
)

// Protocol names a rule accepts (Neutron's); a decimal IP protocol number
// from 0 to 255 is accepted too. The empty string (or "any") means every
// protocol.
const (
	ProtoAny    = "any"
	ProtoICMP   = "icmp"
	ProtoICMPv6 = "icmpv6"
	ProtoTCP    = "tcp"
	ProtoUDP    = "udp"
)

// Rule is one security group rule, as Neutron has them. Traffic a rule
// does not admit is dropped (ingress) or, if no egress rule admits it,
// dropped too; connections a rule admitted have their replies and related
// packets admitted both ways.
type Rule struct {
	// Direction is Ingress or Egress.
	Direction Direction `json:"direction"`
	// EtherType is IPv4 or IPv6.
	EtherType EtherType `json:"ethertype"`
	// Protocol is "", "any", "icmp", "icmpv6" (also "ipv6-icmp"), "tcp",
	// "udp" or a decimal protocol number. "icmp" in an IPv6 rule means
	// ICMPv6, as in Neutron.
	Protocol string `json:"protocol,omitempty"`
	// PortRangeMin and PortRangeMax are, for TCP, UDP, SCTP, DCCP and
	// UDP-Lite, the destination port range (nil: every port; a nil max
	// means min alone); for ICMP and ICMPv6 the type and code (nil: every
	// type, every code), as in Neutron.
	PortRangeMin *int `json:"port_range_min,omitempty"`
	PortRangeMax *int `json:"port_range_max,omitempty"`
	// RemoteIPPrefix limits the rule to peers in this prefix (the source of
	// ingress traffic, the destination of egress traffic).
	// It is a CIDR ("10.0.0.0/8", "2001:db8::/32"); empty means any peer.
	RemoteIPPrefix string `json:"remote_ip_prefix,omitempty"`
	// RemoteGroupID limits the rule to peers that are ports of this group;
	// it follows the group's membership.
	RemoteGroupID string `json:"remote_group_id,omitempty"`
}

// Group is a security group: its rules apply to every port in it.
type Group struct {
	// ID names the group.
	ID string `json:"id"`
	// Rules of the group. A group with no rule drops every ingress and
	// every egress connection.
	Rules []Rule `json:"rules,omitempty"`
}

// DefaultRules are the rules of Neutron's default group for the group
// groupID: all egress, and ingress from members of the same group.
func DefaultRules(groupID string) []Rule {
	return []Rule{
		{Direction: Egress, EtherType: IPv4},
		{Direction: Egress, EtherType: IPv6},
		{Direction: Ingress, EtherType: IPv4, RemoteGroupID: groupID},
		{Direction: Ingress, EtherType: IPv6, RemoteGroupID: groupID},
	}
}

// Port is a port the Firewall filters: the host end of a VIF on a Linux
// bridge, its MAC and fixed IPs (the only ones it may send from) and its
// groups.
type Port struct {
	// ID is the port's ID (the VIF's).
	ID string `json:"id"`
	// Device is the host end of the VIF on the bridge ("tap…").
	Device string `json:"device"`
	// Bridge is the Linux bridge Device is a port of (the VIF's bridge, or
	// the per-port "qbr…" bridge of an Open vSwitch hybrid plug).
	Bridge string `json:"bridge"`
	// MAC is the instance's MAC.
	MAC network.MAC `json:"mac"`
	// IPs are the port's fixed IPs.
	IPs []netip.Addr `json:"ips,omitempty"`
	// Groups are the IDs of the port's security groups; their rules add
	// up. A port with no group drops everything but its own DHCP and
	// neighbour discovery.
	Groups []string `json:"groups,omitempty"`
}

// PortFromVIF returns the Port of vif in groups: the device the VIF driver
// plugs it on, its MAC and fixed IPs. An Open vSwitch VIF without hybrid
// plug is [ErrNotEnforceable]; a malformed VIF or one without a MAC is
// [ErrInvalidPort].
func PortFromVIF(vif network.VIF, groups ...string) (Port, error) {
	if err := vif.Validate(); err != nil {
		return Port{}, fmt.Errorf("%w: %w", ErrInvalidPort, err)
	}
	d, _ := network.DeviceNames(vif.ID)
	p := Port{ID: vif.ID, Device: d.Tap, MAC: vif.Address, Groups: slices.Clone(groups)}
	switch {
	case vif.Type == network.VIFTypeBridge:
		p.Bridge = vif.Bridge
	case vif.Type == network.VIFTypeOVS && vif.HybridPlug:
		p.Bridge = d.Bridge
	case vif.Type == network.VIFTypeOVS:
		return Port{}, fmt.Errorf("%w: port %s is plugged directly on Open vSwitch bridge %s (no hybrid plug, no Linux bridge to filter on)", ErrNotEnforceable, vif.ID, vif.Bridge)
	default:
		return Port{}, fmt.Errorf("%w: port %s: VIF type %q", ErrNotEnforceable, vif.ID, vif.Type)
	}
	for _, s := range vif.Subnets {
		p.IPs = append(p.IPs, s.IPs...)
	}
	return p, p.Validate()
}

// Validate checks the port: an ID usable in device names, valid device and
// bridge names, a unicast MAC, valid unzoned IPs and group IDs, without
// duplicates. Errors wrap [ErrInvalidPort].
func (p Port) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w %s: %s", ErrInvalidPort, p.ID, fmt.Sprintf(format, args...))
	}
	if _, err := network.DeviceNames(p.ID); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidPort, err)
	}
	if len(p.ID) > maxIDLen {
		return bad("ID longer than %d bytes", maxIDLen)
	}
	for _, n := range []string{p.Device, p.Bridge} {
		if err := network.ValidateDeviceName(n); err != nil {
			return fmt.Errorf("%w: %w", ErrInvalidPort, err)
		}
	}
	if len(p.MAC) != 6 || p.MAC[0]&1 == 1 || string(p.MAC) == "\x00\x00\x00\x00\x00\x00" {
		return bad("MAC %q is not a unicast Ethernet address (anti-spoofing needs the MAC)", p.MAC)
	}
	seen := map[netip.Addr]bool{}
	for _, ip := range p.IPs {
		if !ip.IsValid() || ip.Zone() != "" || ip.Is4In6() || ip.IsUnspecified() || ip.IsMulticast() {
			return bad("fixed IP %s is not a unicast address", ip)
		}
		if seen[ip] {
			return bad("fixed IP %s listed twice", ip)
		}
		seen[ip] = true
	}
	gs := map[string]bool{}
	for _, g := range p.Groups {
		if err := validateID(g); err != nil {
			return bad("group %q: %v", g, err)
		}
		if gs[g] {
			return bad("group %s listed twice", g)
		}
		gs[g] = true
	}
	return nil
}

const maxIDLen = 200

func validateID(id string) error {
	if id == "" || len(id) > maxIDLen {
		return fmt.Errorf("ID must be 1 to %d bytes", maxIDLen)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return fmt.Errorf("character %q not allowed (letters, digits, '-', '_', '.')", c)
		}
	}
	return nil
}

// Validate checks the group's ID and every rule, without resolving remote
// groups (the Firewall does that). Errors wrap [ErrInvalidRule].
func (g Group) Validate() error {
	if err := validateID(g.ID); err != nil {
		return fmt.Errorf("%w: group %q: %w", ErrInvalidRule, g.ID, err)
	}
	for i, r := range g.Rules {
		if err := r.Validate(); err != nil {
			return fmt.Errorf("group %s rule %d: %w", g.ID, i, err)
		}
	}
	return nil
}

// Validate checks the rule on its own (a remote group is checked for its
// syntax only). Errors wrap [ErrInvalidRule].
func (r Rule) Validate() error {
	_, err := r.compile()
	return err
}

// compiled is a validated rule in the form the firewall renders.
type compiled struct {
	ingress     bool
	v6          bool
	proto       int // -1: any
	portMin     uint16
	portMax     uint16 // 0: no port match
	icmpType    int    // -1: any
	icmpCode    int    // -1: any
	remote      netip.Prefix
	remoteGroup string
}

func hasPorts(proto int) bool {
	switch proto {
	case 6, 17, 33, 132, 136: // tcp, udp, dccp, sctp, udplite
		return true
	}
	return false
}

func (r Rule) compile() (compiled, error) {
	bad := func(format string, args ...any) (compiled, error) {
		return compiled{}, fmt.Errorf("%w: %s", ErrInvalidRule, fmt.Sprintf(format, args...))
	}
	var c compiled
	switch r.Direction {
	case Ingress:
		c.ingress = true
	case Egress:
	default:
		return bad("direction %q (want ingress or egress)", r.Direction)
	}
	switch r.EtherType {
	case IPv4:
	case IPv6:
		c.v6 = true
	default:
		return bad("ethertype %q (want IPv4 or IPv6)", r.EtherType)
	}
	switch p := strings.ToLower(r.Protocol); p {
	case "", ProtoAny:
		c.proto = -1
	case ProtoTCP:
		c.proto = 6
	case ProtoUDP:
		c.proto = 17
	case ProtoICMP:
		c.proto = 1
		if c.v6 {
			c.proto = 58
		}
	case ProtoICMPv6, "ipv6-icmp":
		if !c.v6 {
			return bad("protocol %s in an IPv4 rule", p)
		}
		c.proto = 58
	default:
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 || n > 255 || strconv.Itoa(n) != p {
			return bad("protocol %q (want any, icmp, icmpv6, tcp, udp or a number 0-255)", r.Protocol)
		}
		c.proto = n
		if n == 1 && c.v6 || n == 58 && !c.v6 {
			return bad("protocol %d does not match ethertype %s", n, r.EtherType)
		}
	}
	c.icmpType, c.icmpCode = -1, -1
	min, max := r.PortRangeMin, r.PortRangeMax
	switch {
	case c.proto == 1 || c.proto == 58:
		if min == nil && max != nil {
			return bad("ICMP code %d without a type", *max)
		}
		if min != nil {
			if *min < 0 || *min > 255 {
				return bad("ICMP type %d out of range 0-255", *min)
			}
			c.icmpType = *min
		}
		if max != nil {
			if *max < 0 || *max > 255 {
				return bad("ICMP code %d out of range 0-255", *max)
			}
			c.icmpCode = *max
		}
	case hasPorts(c.proto):
		if min == nil && max != nil {
			return bad("port range maximum %d without a minimum", *max)
		}
		if min != nil {
			hi := *min
			if max != nil {
				hi = *max
			}
			if *min < 1 || *min > 65535 || hi < 1 || hi > 65535 || hi < *min {
				return bad("port range %d-%d (want 1 <= min <= max <= 65535)", *min, hi)
			}
			c.portMin, c.portMax = uint16(*min), uint16(hi)
		}
	default:
		if min != nil || max != nil {
			return bad("a port range or ICMP type needs protocol tcp, udp, sctp, dccp, udplite, icmp or icmpv6, not %q", r.Protocol)
		}
	}
	if r.RemoteIPPrefix != "" {
		p, err := netip.ParsePrefix(r.RemoteIPPrefix)
		if err != nil {
			return bad("remote_ip_prefix %q: %v", r.RemoteIPPrefix, err)
		}
		if r.RemoteGroupID != "" {
			return bad("both remote_ip_prefix and remote_group_id")
		}
		if p.Addr().Zone() != "" || p.Addr().Is4In6() {
			return bad("remote_ip_prefix %s", p)
		}
		if p.Addr().Is6() != c.v6 {
			return bad("remote_ip_prefix %s does not match ethertype %s", p, r.EtherType)
		}
		if p.Masked() != p {
			return bad("remote_ip_prefix %s has host bits set (want %s)", p, p.Masked())
		}
		c.remote = p
	}
	if r.RemoteGroupID != "" {
		if err := validateID(r.RemoteGroupID); err != nil {
			return bad("remote_group_id %q: %v", r.RemoteGroupID, err)
		}
		c.remoteGroup = r.RemoteGroupID
	}
	return c, nil
}
