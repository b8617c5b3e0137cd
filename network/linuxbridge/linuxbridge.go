//go:build linux

package linuxbridge

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/dockervisor/dockervisor/network"
	"github.com/dockervisor/dockervisor/network/internal/brport"
)

// DriverName is the driver's name in the owner marks of the devices it
// creates (see [network.DeviceOwner]).
const DriverName = "linuxbridge"

// Option configures a Driver.
type Option func(*options) error

type options = brport.Options

// WithHostNetNS puts the host side (bridges, taps) in the network namespace
// at path (such as "/run/netns/host1") instead of the process's own.
func WithHostNetNS(path string) Option { return Option(brport.WithHostNetNS(DriverName, path)) }

// WithLogger sets the logger (default: discard). The driver logs at Debug
// only.
func WithLogger(l *slog.Logger) Option { return Option(brport.WithLogger(DriverName, l)) }

// WithAttachHook is a test hook: f runs during Attach after the veth exists
// and before the guest end is configured, so a test can inject a fault
// (kill the instance's process, say). An error from f fails the Attach.
func WithAttachHook(f func(ctx context.Context, vif network.VIF, target network.Target) error) Option {
	return Option(brport.WithAttachHook(f))
}

// Driver plugs VIFs of type "bridge" as veth ports of Linux bridges.
type Driver struct {
	core *brport.Core
}

var _ network.VIFDriver = (*Driver)(nil)

// New returns a Driver. It does no I/O.
func New(opts ...Option) (*Driver, error) {
	core, err := brport.New(DriverName, check, nil, opts)
	if err != nil {
		return nil, err
	}
	return &Driver{core: core}, nil
}

func check(vif network.VIF) error {
	if err := brport.CheckBridgeVIF(DriverName, vif); err != nil {
		return err
	}
	if vif.VLAN != 0 || vif.BridgeInterface != "" {
		return fmt.Errorf("%w %s: VLAN and bridge_interface are nova-network's (package novanetwork)", network.ErrInvalidVIF, vif.ID)
	}
	return nil
}

// Plug ensures vif's bridge in the host namespace. A device with vif's tap
// name that is not this instance's and port's is
// [network.ErrDeviceConflict], before anything is created.
func (d *Driver) Plug(ctx context.Context, instanceID string, vif network.VIF) error {
	return d.core.Plug(ctx, instanceID, vif)
}

// Close releases the driver's handle of the host namespace. It does not
// unplug anything. It is idempotent.
func (d *Driver) Close() error { return d.core.Close() }

// Attach creates vif's veth, host end on the bridge and guest end as
// target.IfName in target's namespace, and configures the guest end.
func (d *Driver) Attach(ctx context.Context, instanceID string, vif network.VIF, target network.Target) error {
	return d.core.Attach(ctx, instanceID, vif, target)
}

// Detach deletes vif's veth (both ends) if its tap is this instance's and
// port's. Gone is success.
func (d *Driver) Detach(ctx context.Context, instanceID string, vif network.VIF, target network.Target) error {
	return d.core.Detach(ctx, instanceID, vif)
}

// Unplug deletes vif's tap if it is this instance's and port's, and the
// bridge if this driver made it and no port is left on it. Gone is
// success.
func (d *Driver) Unplug(ctx context.Context, instanceID string, vif network.VIF) error {
	return d.core.Unplug(ctx, instanceID, vif)
}
