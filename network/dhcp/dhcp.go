package dhcp

import (
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dockervisor/dockervisor/errclass"
	"github.com/dockervisor/dockervisor/network"
)

// Errors of the package, tested with [errors.Is]. Each wraps one of the
// module's error classes (package errclass).
var (
	// ErrInvalidConfig means a Config or a Host is unusable: no
	// directory, a subnet of the wrong family for its mode, an address
	// outside every served subnet, a directory dnsmasq cannot read after
	// it dropped its privileges. It is an [errclass.ErrInvalidArgument].
	ErrInvalidConfig = errclass.New("dhcp: invalid configuration", errclass.ErrInvalidArgument)
	// ErrNotInstalled means the dnsmasq binary is missing (Debian package
	// dnsmasq-base). It is an [errclass.ErrNotSupported], and so also
	// [errors.ErrUnsupported].
	ErrNotInstalled = errclass.New("dhcp: dnsmasq is not installed", errclass.ErrNotSupported)
	// ErrStart means dnsmasq refused to start; the message ends with what
	// it said. It is an [errclass.ErrUnavailable].
	ErrStart = errclass.New("dhcp: dnsmasq did not start", errclass.ErrUnavailable)
	// ErrNotRunning means the directory has no running server: it was
	// never started there, or it was stopped. It is an
	// [errclass.ErrNotFound].
	ErrNotRunning = errclass.New("dhcp: server not running", errclass.ErrNotFound)
)

// Mode is how instances on a subnet get their addresses, as Neutron's
// subnet attributes say it (enable_dhcp, ipv6_address_mode).
type Mode string

// Modes. An IPv4 subnet is served only in ModeDHCP; an IPv6 subnet in
// one of the others.
const (
	// ModeDHCP is DHCPv4 with a static lease per host (a port's fixed IP).
	ModeDHCP Mode = "dhcp"
	// ModeSLAAC is IPv6 router advertisements with the autonomous flag:
	// an instance makes its address from the prefix and its MAC (EUI-64,
	// the address Neutron gives the port). No DHCPv6.
	ModeSLAAC Mode = "slaac"
	// ModeDHCPv6Stateful is router advertisements with the managed flag
	// and DHCPv6 giving each host its fixed address.
	ModeDHCPv6Stateful Mode = "dhcpv6-stateful"
	// ModeDHCPv6Stateless is router advertisements with the autonomous
	// and other-configuration flags (SLAAC) and DHCPv6 giving the other
	// configuration (DNS servers) only.
	ModeDHCPv6Stateless Mode = "dhcpv6-stateless"
)

// DefaultLeaseTime is the lease time when Config.LeaseTime is zero:
// Neutron's dhcp_lease_duration.
const DefaultLeaseTime = 24 * time.Hour

// DefaultDomain is the domain given to hosts when Config.Domain is empty:
// Nova's dhcp_domain.
const DefaultDomain = "novalocal"

// MetadataAddress is Nova's metadata service address. With
// Config.MetadataRoute set, every DHCPv4 subnet pushes a host route to it.
var MetadataAddress = netip.MustParseAddr("169.254.169.254")

// Subnet is a subnet the server serves.
type Subnet struct {
	// CIDR is the subnet; the server's interface must hold an address in
	// it (Neutron's DHCP port).
	CIDR netip.Prefix `json:"cidr"`
	// Mode says how it is served.
	Mode Mode `json:"mode"`
	// Gateway is pushed as the default router (DHCPv4); zero pushes none.
	Gateway netip.Addr `json:"gateway,omitzero"`
	// DNS are the name servers pushed (DHCPv4 and DHCPv6).
	DNS []netip.Addr `json:"dns,omitempty"`
	// Routes are host routes pushed as classless static routes (DHCPv4).
	Routes []network.Route `json:"routes,omitempty"`
}

// Host is one port the server knows: its MAC and its fixed IPs. A DHCPv4
// or stateful DHCPv6 subnet gives a host the first of its IPs in that
// subnet, and nothing to an unknown MAC (there is no dynamic pool).
type Host struct {
	MAC network.MAC  `json:"mac"`
	IPs []netip.Addr `json:"ips"`
	// Hostname is given to the host (DHCP option 12); empty means
	// "host-" and the first IPv4 address with dashes, as Neutron names
	// them.
	Hostname string `json:"hostname,omitempty"`
}

// Config is one network's DHCP server.
type Config struct {
	// Dir holds the server's files: dnsmasq.conf, hosts, leases, its PID
	// file and log, and this configuration. dnsmasq re-reads the hosts
	// file after dropping its privileges (to nobody), so Dir and every
	// directory above it must be searchable by others. Required.
	Dir string `json:"dir"`
	// NetNS is the path of the network namespace dnsmasq runs in (such as
	// a network's service namespace, "/run/netns/NAME"); empty means the
	// caller's.
	NetNS string `json:"netns,omitempty"`
	// Interface is the device dnsmasq serves, in NetNS. It must hold an
	// address in every served subnet. Required.
	Interface string `json:"interface"`
	// Subnets are the served subnets. Required.
	Subnets []Subnet `json:"subnets"`
	// MTU is pushed in DHCPv4 (option 26) and in router advertisements;
	// zero pushes none.
	MTU int `json:"mtu,omitempty"`
	// Domain is the DNS domain given to hosts; empty means
	// [DefaultDomain].
	Domain string `json:"domain,omitempty"`
	// LeaseTime is the lease time (and the advertised prefixes' valid
	// lifetime); zero means [DefaultLeaseTime].
	LeaseTime time.Duration `json:"lease_time,omitempty"`
	// MetadataRoute, when valid, is pushed on every DHCPv4 subnet as the
	// next hop of a host route to [MetadataAddress] (Neutron's isolated
	// metadata): the server's interface address where a metadata service
	// listens.
	MetadataRoute netip.Addr `json:"metadata_route,omitzero"`
	// Binary is the dnsmasq program; empty means "dnsmasq" on PATH, else
	// /usr/sbin/dnsmasq.
	Binary string `json:"binary,omitempty"`
}

func (c Config) leaseTime() time.Duration {
	if c.LeaseTime <= 0 {
		return DefaultLeaseTime
	}
	return c.LeaseTime
}

func (c Config) domain() string {
	if c.Domain == "" {
		return DefaultDomain
	}
	return c.Domain
}

// Validate checks the configuration. Errors wrap [ErrInvalidConfig].
func (c Config) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidConfig, fmt.Sprintf(format, args...))
	}
	switch {
	case c.Dir == "" || !filepath.IsAbs(c.Dir):
		return bad("directory %q is not an absolute path", c.Dir)
	case network.ValidateDeviceName(c.Interface) != nil:
		return bad("interface %q is not a device name", c.Interface)
	case len(c.Subnets) == 0:
		return bad("no subnets")
	case c.MTU < 0 || (c.MTU > 0 && c.MTU < 68) || c.MTU > 65535:
		return bad("MTU %d out of range", c.MTU)
	case c.LeaseTime < 0 || (c.LeaseTime > 0 && c.LeaseTime < 2*time.Minute):
		return bad("lease time %s: at least two minutes", c.LeaseTime)
	case !validDomain(c.domain()):
		return bad("domain %q", c.Domain)
	case c.MetadataRoute.IsValid() && !c.MetadataRoute.Is4():
		return bad("metadata route %s is not an IPv4 address", c.MetadataRoute)
	}
	seen := map[netip.Prefix]bool{}
	for i, s := range c.Subnets {
		if !s.CIDR.IsValid() || s.CIDR.Masked() != s.CIDR {
			return bad("subnet %d: CIDR %s is not a network prefix", i, s.CIDR)
		}
		if seen[s.CIDR] {
			return bad("subnet %s listed twice", s.CIDR)
		}
		seen[s.CIDR] = true
		v4 := s.CIDR.Addr().Is4()
		switch s.Mode {
		case ModeDHCP:
			if !v4 {
				return bad("subnet %s: mode %s is IPv4's", s.CIDR, s.Mode)
			}
		case ModeSLAAC, ModeDHCPv6Stateful, ModeDHCPv6Stateless:
			if v4 {
				return bad("subnet %s: mode %s is IPv6's", s.CIDR, s.Mode)
			}
			if s.CIDR.Bits() != 64 && s.Mode != ModeDHCPv6Stateful {
				return bad("subnet %s: SLAAC needs a /64", s.CIDR)
			}
		default:
			return bad("subnet %s: unknown mode %q", s.CIDR, s.Mode)
		}
		if s.Gateway.IsValid() && (s.Gateway.Is4() != v4 || !s.CIDR.Contains(s.Gateway)) {
			return bad("subnet %s: gateway %s is outside it", s.CIDR, s.Gateway)
		}
		for _, d := range s.DNS {
			if !d.IsValid() || d.Is4() != v4 || d.Zone() != "" {
				return bad("subnet %s: DNS server %s is not an address of its family", s.CIDR, d)
			}
		}
		for _, r := range s.Routes {
			if !r.Dest.IsValid() || r.Dest.Masked() != r.Dest || r.Dest.Addr().Is4() != v4 {
				return bad("subnet %s: route %s", s.CIDR, r.Dest)
			}
			if r.Gateway.IsValid() && r.Gateway.Is4() != v4 {
				return bad("subnet %s: route %s via %s", s.CIDR, r.Dest, r.Gateway)
			}
		}
	}
	return nil
}

var domainLabel = func(s string) bool {
	if s == "" || len(s) > 63 || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
			return false
		}
	}
	return true
}

func validDomain(d string) bool {
	if len(d) > 253 {
		return false
	}
	for _, l := range strings.Split(d, ".") {
		if !domainLabel(l) {
			return false
		}
	}
	return true
}

// served reports whether the subnet gives hosts their fixed addresses
// (DHCPv4, stateful DHCPv6).
func (s Subnet) served() bool { return s.Mode == ModeDHCP || s.Mode == ModeDHCPv6Stateful }

// tag is dnsmasq's tag of the i-th subnet.
func tag(i int) string { return "subnet" + strconv.Itoa(i) }

// File names in Config.Dir.
const (
	confFile   = "dnsmasq.conf"
	hostsFile  = "hosts"
	leasesFile = "leases"
	pidFile    = "dnsmasq.pid"
	logFile    = "dnsmasq.log"
	configJSON = "config.json"
	lockFile   = "lock"
)

// render returns dnsmasq.conf for c: DHCP and router advertisements on
// one interface, no DNS, static leases only.
func (c Config) render() string {
	var b strings.Builder
	line := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	line("# Written by dockervisor's network/dhcp; rewritten on every start.")
	line("port=0")
	line("no-resolv")
	line("no-hosts")
	line("bind-interfaces")
	line("interface=%s", c.Interface)
	line("except-interface=lo")
	line("domain=%s", c.domain())
	line("dhcp-hostsfile=%s", filepath.Join(c.Dir, hostsFile))
	line("dhcp-leasefile=%s", filepath.Join(c.Dir, leasesFile))
	line("pid-file=%s", filepath.Join(c.Dir, pidFile))
	line("log-facility=%s", filepath.Join(c.Dir, logFile))
	lease := strconv.FormatInt(int64(c.leaseTime()/time.Second), 10)
	v6 := false
	for i, s := range c.Subnets {
		t := tag(i)
		addr := s.CIDR.Addr().String()
		switch s.Mode {
		case ModeDHCP:
			line("dhcp-range=set:%s,%s,static,%s,%s", t, addr, netmask(s.CIDR), lease)
			// dnsmasq sends itself as the router unless told otherwise.
			if s.Gateway.IsValid() {
				line("dhcp-option=tag:%s,option:router,%s", t, s.Gateway)
			} else {
				line("dhcp-option=tag:%s,option:router", t)
			}
			if len(s.DNS) > 0 {
				line("dhcp-option=tag:%s,option:dns-server,%s", t, joinAddrs(s.DNS, false))
			}
			if routes := c.classless(s); routes != "" {
				// RFC 3442: a client given classless routes ignores the
				// router option, so the default route is among them.
				line("dhcp-option=tag:%s,option:classless-static-route,%s", t, routes)
				line("dhcp-option=tag:%s,249,%s", t, routes)
			}
			if c.MTU > 0 {
				line("dhcp-option-force=tag:%s,option:mtu,%d", t, c.MTU)
			}
		case ModeSLAAC:
			v6 = true
			line("dhcp-range=set:%s,%s,ra-only,%d,%s", t, addr, s.CIDR.Bits(), lease)
		case ModeDHCPv6Stateful:
			v6 = true
			line("dhcp-range=set:%s,%s,static,%d,%s", t, addr, s.CIDR.Bits(), lease)
		case ModeDHCPv6Stateless:
			v6 = true
			line("dhcp-range=set:%s,%s,ra-stateless,%d,%s", t, addr, s.CIDR.Bits(), lease)
		}
		if s.Mode != ModeDHCP && s.Mode != ModeSLAAC && len(s.DNS) > 0 {
			line("dhcp-option=tag:%s,option6:dns-server,%s", t, joinAddrs(s.DNS, true))
		}
	}
	if v6 {
		line("enable-ra")
		// The server is no router: its advertisements carry prefixes
		// (and the MTU) with a router lifetime of zero.
		mtu := ""
		if c.MTU > 0 {
			mtu = "mtu:" + strconv.Itoa(c.MTU) + ","
		}
		line("ra-param=%s,%s%d,0", c.Interface, mtu, raInterval)
	}
	return b.String()
}

// raInterval is the interval of unsolicited router advertisements, in
// seconds; a host asks for one when its link comes up.
const raInterval = 30

// classless returns the classless static routes of s: its host routes,
// the metadata route, and the default route when there are others.
func (c Config) classless(s Subnet) string {
	var parts []string
	add := func(dst netip.Prefix, gw netip.Addr) {
		g := "0.0.0.0" // on link
		if gw.IsValid() {
			g = gw.String()
		}
		parts = append(parts, dst.String()+","+g)
	}
	for _, r := range s.Routes {
		add(r.Dest, r.Gateway)
	}
	if c.MetadataRoute.IsValid() && s.CIDR.Contains(c.MetadataRoute) {
		add(netip.PrefixFrom(MetadataAddress, 32), c.MetadataRoute)
	}
	if len(parts) == 0 {
		return ""
	}
	if s.Gateway.IsValid() {
		add(netip.PrefixFrom(netip.IPv4Unspecified(), 0), s.Gateway)
	}
	return strings.Join(parts, ",")
}

func joinAddrs(as []netip.Addr, bracket bool) string {
	out := make([]string, len(as))
	for i, a := range as {
		out[i] = a.String()
		if bracket {
			out[i] = "[" + out[i] + "]"
		}
	}
	return strings.Join(out, ",")
}

func netmask(p netip.Prefix) string {
	m := net.CIDRMask(p.Bits(), 32)
	a, _ := netip.AddrFromSlice(m)
	return a.String()
}

// hostName returns the name a host is given: its own, or "host-" and its
// first IPv4 address with dashes (Neutron's), or its MAC without colons.
func (h Host) hostName() string {
	if h.Hostname != "" {
		return h.Hostname
	}
	for _, ip := range h.IPs {
		if ip.Is4() {
			return "host-" + strings.ReplaceAll(ip.String(), ".", "-")
		}
	}
	return "host-" + strings.ReplaceAll(h.MAC.String(), ":", "")
}

// validateHosts checks hosts against the served subnets: unicast MACs,
// each listed once, names usable as host names, and no address claimed
// twice.
func (c Config) validateHosts(hosts []Host) error {
	macs := map[string]bool{}
	ips := map[netip.Addr]string{}
	for _, h := range hosts {
		if len(h.MAC) == 0 {
			return fmt.Errorf("%w: host without a MAC", ErrInvalidConfig)
		}
		if _, err := network.ParseMAC(h.MAC.String()); err != nil || h.MAC[0]&1 != 0 {
			return fmt.Errorf("%w: host MAC %s is not a unicast MAC", ErrInvalidConfig, h.MAC)
		}
		if macs[h.MAC.String()] {
			return fmt.Errorf("%w: host %s listed twice", ErrInvalidConfig, h.MAC)
		}
		macs[h.MAC.String()] = true
		if !domainLabel(h.hostName()) {
			return fmt.Errorf("%w: host %s: name %q is not a host name", ErrInvalidConfig, h.MAC, h.hostName())
		}
		for _, ip := range h.IPs {
			if other, ok := ips[ip]; ok {
				return fmt.Errorf("%w: address %s given to %s and %s", ErrInvalidConfig, ip, other, h.MAC)
			}
			ips[ip] = h.MAC.String()
		}
	}
	return nil
}

// renderHosts returns the dhcp-hostsfile for hosts: one line per host and
// served subnet, with the host's first IP in it; hosts and their IPs in
// the given order.
func (c Config) renderHosts(hosts []Host) string {
	var b strings.Builder
	for _, h := range hosts {
		for _, s := range c.Subnets {
			if !s.served() {
				continue
			}
			i := slices.IndexFunc(h.IPs, s.CIDR.Contains)
			if i < 0 {
				continue
			}
			ip := h.IPs[i].String()
			if h.IPs[i].Is6() {
				ip = "[" + ip + "]"
			}
			fmt.Fprintf(&b, "%s,%s,%s\n", h.MAC, ip, h.hostName())
		}
	}
	return b.String()
}

// HostFor returns the host entry of a VIF: its MAC and every fixed IP of
// its subnets. A VIF without a MAC has none (ok false).
func HostFor(vif network.VIF) (Host, bool) {
	if len(vif.Address) == 0 {
		return Host{}, false
	}
	h := Host{MAC: vif.Address}
	for _, s := range vif.Subnets {
		h.IPs = append(h.IPs, s.IPs...)
	}
	return h, true
}

// SubnetOf returns how a DHCP server serves the VIF subnet s, from the
// subnet's meta as Nova has it: an IPv6 address mode is that mode, DHCP
// (a DHCP server, or enable_dhcp: network.Subnet.DHCP) is DHCPv4 (IPv4)
// or stateful DHCPv6 (IPv6, Neutron's "static" dnsmasq mode for a subnet
// without modes). A static subnet is not served (ok false).
func SubnetOf(s network.Subnet) (Subnet, bool) {
	out := Subnet{CIDR: s.CIDR, Gateway: s.Gateway, DNS: s.DNS, Routes: s.Routes}
	switch {
	case s.CIDR.Addr().Is6() && s.IPv6AddressMode != "":
		out.Mode = Mode(s.IPv6AddressMode)
	case s.DHCP() && s.CIDR.Addr().Is4():
		out.Mode = ModeDHCP
	case s.DHCP():
		out.Mode = ModeDHCPv6Stateful
	default:
		return Subnet{}, false
	}
	if out.CIDR.Addr().Is6() {
		out.Gateway, out.Routes = netip.Addr{}, nil // RAs carry neither here
	}
	return out, true
}
