package svcport

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"

	"github.com/dockervisor/dockervisor/network"
	"github.com/dockervisor/dockervisor/network/internal/linkutil"
)

// IfName is the port's device in the service namespace.
const IfName = "svc0"

// MetadataAddress is Nova's metadata service address, which a port with
// Metadata holds.
var MetadataAddress = netip.MustParseAddr("169.254.169.254")

// Port is a network's service port.
type Port struct {
	// Namespace names the service namespace (/run/netns/<Namespace>).
	Namespace string
	// VIF is the port as the network's VIF driver plugs it: its ID (the
	// host device names derive from it), MAC, type, bridge, MTU, and its
	// subnets with the service's addresses in IPs (the DHCP server's, the
	// metadata proxy's). Gateways and routes are not used: the namespace
	// has no default route.
	VIF network.VIF
	// Metadata also gives the port 169.254.169.254/32.
	Metadata bool
}

// Path returns the path of the service namespace.
func (p Port) Path() string { return linkutil.NamedPath(p.Namespace) }

// vif is the port's VIF as attached: the service addresses only.
func (p Port) vif() network.VIF {
	v := p.VIF
	v.Subnets = nil
	for _, s := range p.VIF.Subnets {
		v.Subnets = append(v.Subnets, network.Subnet{CIDR: s.CIDR, IPs: slices.Clone(s.IPs)})
	}
	if p.Metadata {
		v.Subnets = append(v.Subnets, network.Subnet{CIDR: netip.PrefixFrom(MetadataAddress, 32), IPs: []netip.Addr{MetadataAddress}})
	}
	return v
}

func (p Port) validate() error {
	if p.Namespace == "" {
		return fmt.Errorf("%w: service port %s: no namespace", network.ErrInvalidTarget, p.VIF.ID)
	}
	v := p.vif()
	if err := v.Validate(); err != nil {
		return err
	}
	for _, s := range p.VIF.Subnets {
		if len(s.IPs) == 0 {
			return fmt.Errorf("%w %s: service port without an address in %s", network.ErrInvalidVIF, p.VIF.ID, s.CIDR)
		}
	}
	return nil
}

// sysctls of a service namespace, set before the port is attached (the
// defaults apply to the new device): no router advertisements taken, no
// duplicate address detection (the addresses are the service's own, and
// must work at once), IPv6 on.
var sysctls = [][2]string{
	{"net.ipv6.conf.all.disable_ipv6", "0"},
	{"net.ipv6.conf.default.disable_ipv6", "0"},
	{"net.ipv6.conf.all.accept_ra", "0"},
	{"net.ipv6.conf.default.accept_ra", "0"},
	{"net.ipv6.conf.default.accept_dad", "0"},
}

// Ensure makes p's service namespace and plugs and attaches p in it with
// drv, the network's VIF driver. It is idempotent: a second call
// re-attaches the port as p says. On error it leaves nothing it made.
func Ensure(ctx context.Context, drv network.VIFDriver, p Port) (err error) {
	if err := p.validate(); err != nil {
		return err
	}
	created, err := linkutil.EnsureNamed(p.Namespace)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil && created {
			err = errors.Join(err, drv.Unplug(context.WithoutCancel(ctx), p.Namespace, p.vif()), linkutil.DeleteNamed(p.Namespace))
		}
	}()
	ns, err := linkutil.Open(p.Path())
	if err != nil {
		return err
	}
	defer ns.Close()
	if err := ns.UpLoopback(); err != nil {
		return err
	}
	for _, kv := range sysctls {
		if err := ns.SetSysctl(kv[0], kv[1]); err != nil {
			return err
		}
	}
	v := p.vif()
	if err := drv.Plug(ctx, p.Namespace, v); err != nil {
		return fmt.Errorf("svcport: plug %s: %w", v.ID, err)
	}
	if err := drv.Attach(ctx, p.Namespace, v, network.Target{NetNS: p.Path(), IfName: IfName}); err != nil {
		return fmt.Errorf("svcport: attach %s in %s: %w", v.ID, p.Namespace, err)
	}
	return nil
}

// Remove detaches and unplugs p and deletes its service namespace. What is
// gone already is no error.
func Remove(ctx context.Context, drv network.VIFDriver, p Port) error {
	v := p.vif()
	target := network.Target{NetNS: p.Path(), IfName: IfName}
	var errs []error
	if err := drv.Detach(ctx, p.Namespace, v, target); err != nil && !errors.Is(err, network.ErrNamespaceGone) {
		errs = append(errs, fmt.Errorf("svcport: detach %s: %w", v.ID, err))
	}
	if err := drv.Unplug(ctx, p.Namespace, v); err != nil {
		errs = append(errs, fmt.Errorf("svcport: unplug %s: %w", v.ID, err))
	}
	errs = append(errs, linkutil.DeleteNamed(p.Namespace))
	return errors.Join(errs...)
}
