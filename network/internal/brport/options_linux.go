package brport

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/dockervisor/dockervisor/network"
)

// AttachHook runs during Attach after the veth exists and before the guest
// end is configured (a test hook).
type AttachHook = func(ctx context.Context, vif network.VIF, target network.Target) error

// Options are the options of a bridge driver. Each driver package declares
// its own Option type over them (type Option func(*options) error, with
// options an alias of Options), so that the options are written once and
// every package keeps its own Option type.
type Options struct {
	hostNetNS  string
	log        *slog.Logger
	attachHook AttachHook
}

// WithHostNetNS is the option that puts the host side in the network
// namespace at path; driver names the package in the error of an empty
// path.
func WithHostNetNS(driver, path string) func(*Options) error {
	return func(o *Options) error {
		if path == "" {
			return fmt.Errorf("%s: empty host namespace path", driver)
		}
		o.hostNetNS = path
		return nil
	}
}

// WithLogger is the option that sets the logger.
func WithLogger(driver string, l *slog.Logger) func(*Options) error {
	return func(o *Options) error {
		if l == nil {
			return fmt.Errorf("%s: nil logger", driver)
		}
		o.log = l
		return nil
	}
}

// WithAttachHook is the option that sets the attach hook.
func WithAttachHook(f AttachHook) func(*Options) error {
	return func(o *Options) error {
		o.attachHook = f
		return nil
	}
}

// New returns the Core of the bridge driver called driver (its name in
// owner marks and error messages) configured by opts. check is the
// driver's check of a VIF it is asked to plug or attach (validity, type,
// fields it does not serve); uplink, if not nil, connects the driver's
// bridges to the outside. New does no I/O.
func New[O ~func(*Options) error](driver string, check func(network.VIF) error, uplink Uplink, opts []O) (*Core, error) {
	o := Options{log: slog.New(slog.DiscardHandler)}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	return &Core{
		driver: driver, check: check, uplink: uplink,
		hostNetNS: o.hostNetNS, log: o.log, attachHook: o.attachHook,
	}, nil
}

// CheckBridgeVIF is the check every bridge driver makes of a VIF: valid,
// of type "bridge", with a bridge.
func CheckBridgeVIF(driver string, vif network.VIF) error {
	if err := vif.Validate(); err != nil {
		return err
	}
	if vif.Type != network.VIFTypeBridge {
		return fmt.Errorf("%w: %s cannot plug %q (port %s)", network.ErrUnsupportedVIFType, driver, vif.Type, vif.ID)
	}
	if vif.Bridge == "" {
		return fmt.Errorf("%w %s: no bridge", network.ErrInvalidVIF, vif.ID)
	}
	return nil
}
