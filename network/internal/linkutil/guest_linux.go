package linkutil

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/dockervisor/dockervisor/network"
	"github.com/dockervisor/dockervisor/network/nldump"
)

// Route is a route of a guest: Dst through Gateway (zero: on link).
type Route struct {
	Dst     netip.Prefix
	Gateway netip.Addr
}

// GuestConfig is the configuration of an instance's end of a VIF.
type GuestConfig struct {
	// Addrs are the fixed IPs with their subnets' prefix lengths.
	Addrs []netip.Prefix
	// Routes are the host routes.
	Routes []Route
	// DefaultV4 and DefaultV6 are the gateways of the default routes to
	// install through this link; zero means none.
	DefaultV4, DefaultV6 netip.Addr
}

// GuestConfigFor derives the guest configuration of vif: every fixed IP
// with its subnet's length, every host route, and the default routes that
// target asks for, through the first gateway of each family.
func GuestConfigFor(vif network.VIF, target network.Target) GuestConfig {
	var c GuestConfig
	for _, s := range vif.Subnets {
		for _, ip := range s.IPs {
			c.Addrs = append(c.Addrs, netip.PrefixFrom(ip, s.CIDR.Bits()))
		}
		for _, r := range s.Routes {
			c.Routes = append(c.Routes, Route{Dst: r.Dest, Gateway: r.Gateway})
		}
		if !s.Gateway.IsValid() {
			continue
		}
		if s.Gateway.Is4() && target.DefaultRouteV4 && !c.DefaultV4.IsValid() {
			c.DefaultV4 = s.Gateway
		}
		if s.Gateway.Is6() && target.DefaultRouteV6 && !c.DefaultV6.IsValid() {
			c.DefaultV6 = s.Gateway
		}
	}
	return c
}

func ipNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: net.IP(p.Addr().AsSlice()), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

// UpLoopback sets the namespace's loopback device up.
func (n *NS) UpLoopback() error {
	lo, err := nldump.LinkByName(n.h, "lo")
	if err != nil {
		return fmt.Errorf("linkutil: loopback in %s: %w", n.path, err)
	}
	if lo.Attrs().Flags&net.FlagUp != 0 {
		return nil
	}
	if err := n.h.LinkSetUp(lo); err != nil {
		return fmt.Errorf("linkutil: set loopback up in %s: %w", n.path, err)
	}
	return nil
}

// ConfigureGuest configures link, an instance's end of a VIF in this
// namespace, whose name, MAC and MTU were set when it was created: it
// sets loopback up, adds every address (IPv6 ones with IFA_F_NODAD, so
// they are usable at once), sets the link up, and adds the routes and the
// default routes. Addresses and routes are replaced if present, so a
// repeated call converges.
func (n *NS) ConfigureGuest(link netlink.Link, c GuestConfig) error {
	if err := n.UpLoopback(); err != nil {
		return err
	}
	name := link.Attrs().Name
	for _, a := range c.Addrs {
		addr := &netlink.Addr{IPNet: ipNet(a)}
		if a.Addr().Is6() {
			addr.Flags = unix.IFA_F_NODAD
		}
		if err := n.h.AddrReplace(link, addr); err != nil {
			return fmt.Errorf("linkutil: address %s on %s: %w", a, name, err)
		}
	}
	if err := n.h.LinkSetUp(link); err != nil {
		return fmt.Errorf("linkutil: set %s up: %w", name, err)
	}
	routes := c.Routes
	if c.DefaultV4.IsValid() {
		routes = append(routes, Route{Dst: netip.PrefixFrom(netip.IPv4Unspecified(), 0), Gateway: c.DefaultV4})
	}
	if c.DefaultV6.IsValid() {
		routes = append(routes, Route{Dst: netip.PrefixFrom(netip.IPv6Unspecified(), 0), Gateway: c.DefaultV6})
	}
	for _, r := range routes {
		rt := &netlink.Route{LinkIndex: link.Attrs().Index, Dst: ipNet(r.Dst)}
		if r.Gateway.IsValid() {
			rt.Gw = net.IP(r.Gateway.AsSlice())
		} else {
			rt.Scope = netlink.SCOPE_LINK
		}
		if err := n.h.RouteReplace(rt); err != nil {
			return fmt.Errorf("linkutil: route %s via %s on %s: %w", r.Dst, r.Gateway, name, err)
		}
	}
	return nil
}

// SetTxChecksum turns transmit checksum offload of the link called name on
// or off, as `ethtool -K name tx on|off` does (the ETHTOOL_STXCSUM ioctl,
// issued from inside the namespace). TCP through Open vSwitch's userspace
// datapath needs it off on the veth end the datapath reads from.
func (n *NS) SetTxChecksum(name string, on bool) error {
	if len(name) > network.MaxDeviceNameLen {
		return fmt.Errorf("%w: %q", network.ErrDeviceNameTooLong, name)
	}
	var data uint32
	if on {
		data = 1
	}
	return n.Do(func() error {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("linkutil: ethtool socket: %w", err)
		}
		defer unix.Close(fd)
		if err := ethtoolSetValue(fd, name, unix.ETHTOOL_STXCSUM, data); err != nil {
			if errors.Is(err, unix.ENODEV) {
				return fmt.Errorf("linkutil: tx checksum of %s in %s: %w", name, n.path, netlink.LinkNotFoundError{})
			}
			return fmt.Errorf("linkutil: tx checksum of %s in %s: %w", name, n.path, err)
		}
		return nil
	})
}

// TxChecksum reports whether transmit checksum offload of the link called
// name is on (ETHTOOL_GTXCSUM).
func (n *NS) TxChecksum(name string) (bool, error) {
	var on bool
	err := n.Do(func() error {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("linkutil: ethtool socket: %w", err)
		}
		defer unix.Close(fd)
		v, err := ethtoolGetValue(fd, name, unix.ETHTOOL_GTXCSUM)
		if err != nil {
			return fmt.Errorf("linkutil: tx checksum of %s in %s: %w", name, n.path, err)
		}
		on = v != 0
		return nil
	})
	return on, err
}
