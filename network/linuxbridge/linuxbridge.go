//go:build linux

package linuxbridge

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/dockervisor/dockervisor/network"
	"github.com/dockervisor/dockervisor/network/internal/brport"
)

// Option configures a Driver.
type Option func(*options) error

type options struct {
	hostNetNS  string
	log        *slog.Logger
	attachHook func(context.Context, network.VIF, network.Target) error
}

// WithHostNetNS puts the host side (bridges, taps) in the network namespace
// at path (such as "/run/netns/host1") instead of the process's own.
func WithHostNetNS(path string) Option {
	return func(o *options) error {
		if path == "" {
			return fmt.Errorf("linuxbridge: empty host namespace path")
		}
		o.hostNetNS = path
		return nil
	}
}

// WithLogger sets the logger (default: discard). The driver logs at Debug
// only.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) error {
		if l == nil {
			return fmt.Errorf("linuxbridge: nil logger")
		}
		o.log = l
		return nil
	}
}

// WithAttachHook is a test hook: f runs during Attach after the veth exists
// and before the guest end is configured, so a test can inject a fault
// (kill the instance's process, say). An error from f fails the Attach.
func WithAttachHook(f func(ctx context.Context, vif network.VIF, target network.Target) error) Option {
	return func(o *options) error {
		o.attachHook = f
		return nil
	}
}

// Driver plugs VIFs of type "bridge" as veth ports of Linux bridges.
type Driver struct {
	core *brport.Core
}

var _ network.VIFDriver = (*Driver)(nil)

// New returns a Driver. It does no I/O.
func New(opts ...Option) (*Driver, error) {
	o := options{log: slog.New(slog.DiscardHandler)}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	return &Driver{core: &brport.Core{HostNetNS: o.hostNetNS, Log: o.log, AttachHook: o.attachHook}}, nil
}

func check(vif network.VIF) error {
	if err := vif.Validate(); err != nil {
		return err
	}
	if vif.Type != network.VIFTypeBridge {
		return fmt.Errorf("%w: linuxbridge cannot plug %q (port %s)", network.ErrUnsupportedVIFType, vif.Type, vif.ID)
	}
	if vif.Bridge == "" {
		return fmt.Errorf("%w %s: no bridge", network.ErrInvalidVIF, vif.ID)
	}
	if vif.VLAN != 0 || vif.BridgeInterface != "" {
		return fmt.Errorf("%w %s: VLAN and bridge_interface are nova-network's (package novanetwork)", network.ErrInvalidVIF, vif.ID)
	}
	return nil
}

// Plug ensures vif's bridge in the host namespace.
func (d *Driver) Plug(ctx context.Context, instanceID string, vif network.VIF) error {
	if err := check(vif); err != nil {
		return err
	}
	host, err := d.core.Host()
	if err != nil {
		return err
	}
	unlock, err := d.core.LockBridge(ctx, vif.Bridge)
	if err != nil {
		return err
	}
	defer unlock()
	_, _, err = d.core.EnsureBridge(host, vif.Bridge, vif.MTU)
	return err
}

// Close releases the driver's handle of the host namespace. It does not
// unplug anything. It is idempotent.
func (d *Driver) Close() error { return d.core.Close() }

// Attach creates vif's veth, host end on the bridge and guest end as
// target.IfName in target's namespace, and configures the guest end.
func (d *Driver) Attach(ctx context.Context, instanceID string, vif network.VIF, target network.Target) error {
	if err := check(vif); err != nil {
		return err
	}
	return d.core.Attach(ctx, vif, target)
}

// Detach deletes vif's veth (both ends). Gone is success.
func (d *Driver) Detach(ctx context.Context, instanceID string, vif network.VIF, target network.Target) error {
	return d.core.Detach(ctx, vif)
}

// Unplug deletes vif's tap and the bridge if this module made it and no
// port is left on it. Gone is success.
func (d *Driver) Unplug(ctx context.Context, instanceID string, vif network.VIF) error {
	if _, err := network.DeviceNames(vif.ID); err != nil {
		return err
	}
	if vif.Bridge != "" {
		if err := network.ValidateDeviceName(vif.Bridge); err != nil {
			return err
		}
	}
	return d.core.Unplug(ctx, vif, nil, nil)
}
