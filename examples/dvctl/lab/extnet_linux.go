package lab

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"strings"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/dockervisor/dockervisor/network/floatingip"
	"github.com/dockervisor/dockervisor/network/nldump"
)

// The external namespace of a lab is its outside world and its router: it
// holds ExtInterface (one end of a veth, with the external network's first
// address, where floating IPs are bound), and for each routed network a veth
// whose end in the external namespace has the network's gateway address and
// whose peer is a port of the network's bridge in the lab namespace. So
// traffic between the outside and an instance crosses the bridge as bridged
// traffic, where the lab's security groups filter it.

func nsHandle(name string) (*netlink.Handle, netns.NsHandle, error) {
	ns, err := netns.GetFromName(name)
	if err != nil {
		return nil, 0, fmt.Errorf("lab: namespace %s: %w", name, err)
	}
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		ns.Close()
		return nil, 0, err
	}
	return h, ns, nil
}

func prefixNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

// ensureRouter builds the external namespace's devices and routes.
func ensureRouter(f *File, labNS, extNS string) error {
	if err := ensureNetns(extNS); err != nil {
		return err
	}
	if out, err := exec.Command("ip", "netns", "exec", extNS, "sysctl", "-qw", "net.ipv4.ip_forward=1").CombinedOutput(); err != nil {
		return fmt.Errorf("lab: ip_forward in %s: %w: %s", extNS, err, strings.TrimSpace(string(out)))
	}
	hx, nsx, err := nsHandle(extNS)
	if err != nil {
		return err
	}
	defer nsx.Close()
	defer hx.Close()
	hl, nsl, err := nsHandle(labNS)
	if err != nil {
		return err
	}
	defer nsl.Close()
	defer hl.Close()

	pfx, router, _ := f.external()
	// A veth with both ends here (this kernel may lack dummy devices).
	if err := ensureLink(hx, &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: ExtInterface}, PeerName: ExtInterface + "p"}); err != nil {
		return err
	}
	if err := hx.LinkSetUp(mustLink(hx, ExtInterface+"p")); err != nil {
		return err
	}
	if err := setAddrUp(hx, ExtInterface, netip.PrefixFrom(router, pfx.Bits())); err != nil {
		return err
	}
	// Legs of networks the file no longer routes go (their peers with them).
	want := map[string]bool{}
	for _, n := range f.routedNetworks() {
		r, _ := f.routerLegs(n)
		want[r] = true
	}
	links, err := nldump.LinkList(hx)
	if err != nil {
		return err
	}
	for _, l := range links {
		if name := l.Attrs().Name; strings.HasPrefix(name, "dvr") && !want[name] {
			if err := hx.LinkDel(l); err != nil {
				return fmt.Errorf("lab: remove router leg %s: %w", name, err)
			}
		}
	}
	for _, n := range f.routedNetworks() {
		net := f.Networks[n]
		sub, _ := f.subnet(n)
		r, p := f.routerLegs(n)
		br := f.BridgeName(n)
		if err := ensureLink(hl, &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: br, MTU: net.MTU}}); err != nil {
			return err
		}
		if err := hl.LinkSetUp(mustLink(hl, br)); err != nil {
			return err
		}
		if _, err := nldump.LinkByName(hx, r); err != nil {
			veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: r, MTU: net.MTU}, PeerName: p, PeerNamespace: netlink.NsFd(int(nsl))}
			if err := hx.LinkAdd(veth); err != nil {
				return fmt.Errorf("lab: router leg %s: %w", r, err)
			}
		}
		peer, err := nldump.LinkByName(hl, p)
		if err != nil {
			return fmt.Errorf("lab: router leg %s: %w", p, err)
		}
		if err := hl.LinkSetMaster(peer, mustLink(hl, br)); err != nil {
			return err
		}
		if err := hl.LinkSetUp(peer); err != nil {
			return err
		}
		if err := setAddrUp(hx, r, netip.PrefixFrom(sub.Gateway, sub.CIDR.Bits())); err != nil {
			return err
		}
	}
	return nil
}

func mustLink(h *netlink.Handle, name string) netlink.Link {
	l, err := nldump.LinkByName(h, name)
	if err != nil {
		return &netlink.Device{LinkAttrs: netlink.LinkAttrs{Name: name}}
	}
	return l
}

func ensureLink(h *netlink.Handle, l netlink.Link) error {
	if err := h.LinkAdd(l); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("lab: create %s: %w", l.Attrs().Name, err)
	}
	return nil
}

func setAddrUp(h *netlink.Handle, dev string, addr netip.Prefix) error {
	l, err := nldump.LinkByName(h, dev)
	if err != nil {
		return fmt.Errorf("lab: %s: %w", dev, err)
	}
	if err := h.AddrReplace(l, &netlink.Addr{IPNet: prefixNet(addr)}); err != nil {
		return fmt.Errorf("lab: address %s on %s: %w", addr, dev, err)
	}
	return h.LinkSetUp(l)
}

// syncBindings makes the floating IPs bound in extNS those of want.
func syncBindings(ctx context.Context, extNS string, want []floatingip.Binding) error {
	b, err := floatingip.New(ExtInterface, floatingip.WithHostNetNS("/run/netns/"+extNS))
	if err != nil {
		return err
	}
	have, err := b.List(ctx)
	if err != nil {
		return err
	}
	wanted := map[netip.Addr]netip.Addr{}
	for _, w := range want {
		wanted[w.Floating] = w.Fixed
	}
	for _, h := range have {
		if fx, ok := wanted[h.Floating]; !ok || fx != h.Fixed {
			if err := b.Unbind(ctx, h.Floating); err != nil {
				return err
			}
		}
	}
	for _, w := range want {
		if err := b.Bind(ctx, w.Floating, w.Fixed); err != nil {
			return fmt.Errorf("lab: floating IP %s: %w", w.Floating, err)
		}
	}
	return nil
}

// unbindAll removes every floating IP of the external namespace.
func unbindAll(ctx context.Context, extNS string) error {
	ns, err := netns.GetFromName(extNS)
	if err != nil {
		return nil // gone, and the bindings with it
	}
	ns.Close()
	return syncBindings(ctx, extNS, nil)
}
