package lab

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/dockervisor/dockervisor/network/floatingip"
	"github.com/dockervisor/dockervisor/network/secgroup"
)

// ExtNetnsName returns the name of the lab's external namespace: the
// outside world of the lab, and the router between it and the lab's
// networks that have a gateway.
func ExtNetnsName(lab string) string { return NetnsName(lab) + "-ext" }

// ExtInterface is the external namespace's interface on the external
// network, where floating IPs are bound.
const ExtInterface = "ext0"

// routerLegs returns the router's device in the external namespace and
// its peer on the network's bridge in the lab namespace.
func (f *File) routerLegs(net string) (router, peer string) {
	h := hash(f.Name, net, "router")[:11]
	return "dvr" + h, "dvp" + h
}

// routedNetworks returns the Linux-bridge networks with a gateway, which
// the external namespace routes when the lab has an external network.
func (f *File) routedNetworks() []string {
	if f.External == nil {
		return nil
	}
	var out []string
	for _, n := range f.networkNames() {
		if net := f.Networks[n]; net.Gateway != "" && net.Type != NetworkOVS {
			out = append(out, n)
		}
	}
	return out
}

// groups returns the lab's security groups for the firewall.
func (f *File) groups() ([]secgroup.Group, error) {
	var out []secgroup.Group
	for _, name := range slices.Sorted(maps.Keys(f.SecurityGroups)) {
		if !hostName.MatchString(name) {
			return nil, fmt.Errorf("%w: security group %q: lower-case letters, digits, '-'", ErrInvalid, name)
		}
		g := secgroup.Group{ID: name}
		for i, r := range f.SecurityGroups[name] {
			sr, err := r.rule()
			if err != nil {
				return nil, fmt.Errorf("%w: security group %q rule %d: %w", ErrInvalid, name, i, err)
			}
			if r.RemoteGroup != "" {
				if _, ok := f.SecurityGroups[r.RemoteGroup]; !ok {
					return nil, fmt.Errorf("%w: security group %q rule %d: no group %q", ErrInvalid, name, i, r.RemoteGroup)
				}
			}
			g.Rules = append(g.Rules, sr)
		}
		if err := g.Validate(); err != nil {
			return nil, fmt.Errorf("%w: security group %q: %w", ErrInvalid, name, err)
		}
		out = append(out, g)
	}
	return out, nil
}

func (r Rule) rule() (secgroup.Rule, error) {
	sr := secgroup.Rule{
		Direction:      secgroup.Direction(strings.ToLower(r.Direction)),
		EtherType:      secgroup.EtherType(r.EtherType),
		Protocol:       strings.ToLower(r.Protocol),
		RemoteIPPrefix: r.Remote,
		RemoteGroupID:  r.RemoteGroup,
	}
	if sr.Direction == "" {
		sr.Direction = secgroup.Ingress
	}
	switch strings.ToLower(r.EtherType) {
	case "", "ipv4":
		sr.EtherType = secgroup.IPv4
	case "ipv6":
		sr.EtherType = secgroup.IPv6
	}
	if r.Port != "" {
		lo, hi, isRange := strings.Cut(r.Port, "-")
		a, err := strconv.Atoi(lo)
		if err != nil {
			return sr, fmt.Errorf("port %q: want N or N-M", r.Port)
		}
		sr.PortRangeMin, sr.PortRangeMax = &a, &a
		if isRange {
			b, err := strconv.Atoi(hi)
			if err != nil {
				return sr, fmt.Errorf("port %q: want N or N-M", r.Port)
			}
			sr.PortRangeMax = &b
		}
		if sr.Protocol == secgroup.ProtoICMP || sr.Protocol == secgroup.ProtoICMPv6 {
			sr.PortRangeMax = nil // the ICMP type; every code
		}
	}
	return sr, sr.Validate()
}

// filteredPorts returns the firewall ports of the instance ports that name
// security groups.
func (f *File) filteredPorts() ([]secgroup.Port, error) {
	var out []secgroup.Port
	for _, name := range f.InstanceNames() {
		in := f.Instances[name]
		var vifs = f.Spec(name).VIFs
		for i, p := range in.Ports {
			if len(p.SecurityGroups) == 0 {
				continue
			}
			for _, g := range p.SecurityGroups {
				if _, ok := f.SecurityGroups[g]; !ok {
					return nil, fmt.Errorf("%w: instance %q port %d: no security group %q", ErrInvalid, name, i, g)
				}
			}
			if i >= len(vifs) {
				return nil, fmt.Errorf("%w: instance %q port %d", ErrInvalid, name, i)
			}
			sp, err := secgroup.PortFromVIF(vifs[i], p.SecurityGroups...)
			if err != nil {
				return nil, fmt.Errorf("%w: instance %q port %d: %w", ErrInvalid, name, i, err)
			}
			out = append(out, sp)
		}
	}
	return out, nil
}

// external returns the external subnet and the router's address on it.
func (f *File) external() (netip.Prefix, netip.Addr, error) {
	pfx, err := netip.ParsePrefix(f.External.CIDR)
	if err != nil || pfx != pfx.Masked() || !pfx.Addr().Is4() || pfx.Bits() > 30 {
		return pfx, netip.Addr{}, fmt.Errorf("%w: external cidr %q: want an IPv4 network prefix of /30 or wider", ErrInvalid, f.External.CIDR)
	}
	return pfx, pfx.Addr().Next(), nil
}

func (f *File) validateExternal() error {
	if f.External == nil {
		if len(f.FloatingIPs) > 0 {
			return fmt.Errorf("%w: floating IPs need an external network", ErrInvalid)
		}
		return nil
	}
	if !f.HasNetworks() {
		return fmt.Errorf("%w: an external network needs networks to route", ErrInvalid)
	}
	if _, _, err := f.external(); err != nil {
		return err
	}
	_, err := f.bindings()
	return err
}

// bindings returns the floating IP bindings the file asks for.
func (f *File) bindings() ([]floatingip.Binding, error) {
	if f.External == nil {
		return nil, nil
	}
	pfx, router, err := f.external()
	if err != nil {
		return nil, err
	}
	routed := f.routedNetworks()
	seen := map[netip.Addr]bool{}
	var out []floatingip.Binding
	for i, fip := range f.FloatingIPs {
		bad := func(format string, args ...any) error {
			return fmt.Errorf("%w: floating IP %d (%s): "+format, append([]any{ErrInvalid, i, fip.IP}, args...)...)
		}
		ip, err := netip.ParseAddr(fip.IP)
		if err != nil || !pfx.Contains(ip) || ip == router || ip == pfx.Addr() {
			return nil, bad("want an address of %s other than the router's %s", pfx, router)
		}
		in, ok := f.Instances[fip.Instance]
		if !ok {
			return nil, bad("no instance %q", fip.Instance)
		}
		if fip.Port < 0 || fip.Port >= len(in.Ports) {
			return nil, bad("instance %q has no port %d", fip.Instance, fip.Port)
		}
		p := in.Ports[fip.Port]
		if !slices.Contains(routed, p.Network) {
			return nil, bad("network %q is not routed: it needs a gateway and type bridge", p.Network)
		}
		fixed, _ := netip.ParseAddr(p.IP)
		if seen[ip] || seen[fixed] {
			return nil, bad("address used twice")
		}
		seen[ip], seen[fixed] = true, true
		out = append(out, floatingip.Binding{Floating: ip, Fixed: fixed})
	}
	slices.SortFunc(out, func(a, b floatingip.Binding) int { return a.Floating.Compare(b.Floating) })
	return out, nil
}
