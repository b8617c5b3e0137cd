package network

import (
	"errors"
	"fmt"
)

// Error classes of the network package. Every error a VIF driver returns
// wraps one of them (or a class of the driver's own package), so callers
// test with errors.Is.
var (
	// ErrUnsupportedVIFType means no driver handles the VIF's type.
	ErrUnsupportedVIFType = errors.New("network: unsupported VIF type")
	// ErrInvalidVIF means the VIF description is incomplete or malformed
	// (a bad MAC, CIDR, MTU, an IP outside its subnet, two VIFs with one
	// MAC or one port ID...).
	ErrInvalidVIF = errors.New("network: invalid VIF")
	// ErrDeviceNameTooLong means a device name (a bridge, say) is longer
	// than the kernel's limit of [MaxDeviceNameLen] bytes. It is also
	// [ErrInvalidVIF].
	ErrDeviceNameTooLong = fmt.Errorf("%w: device name too long", ErrInvalidVIF)
	// ErrInvalidTarget means an attach target is malformed (no namespace
	// path, a bad device name).
	ErrInvalidTarget = errors.New("network: invalid attach target")
	// ErrNamespaceGone means the instance's network namespace no longer
	// exists (its process died).
	ErrNamespaceGone = errors.New("network: namespace no longer exists")
	// ErrDeviceConflict means a device the driver needs exists but is not
	// usable: a name taken by a device the driver did not create for this
	// instance and port (see [DeviceOwner]), or a bridge name taken by a
	// device of another kind, say. The other device is left as it is.
	ErrDeviceConflict = errors.New("network: conflicting device")
	// ErrKernelFeatureMissing means the running kernel lacks a feature the
	// VIF needs (802.1Q VLAN devices, say). It is also
	// [errors.ErrUnsupported]. See [KernelFeatureError].
	ErrKernelFeatureMissing = fmt.Errorf("network: kernel feature missing: %w", errors.ErrUnsupported)
	// ErrUnavailable means a service the driver needs (such as Open
	// vSwitch's database) does not answer.
	ErrUnavailable = errors.New("network: service unavailable")
)

// KernelFeatureError reports that the running kernel lacks a feature an
// operation needs. It matches [ErrKernelFeatureMissing] with errors.Is.
type KernelFeatureError struct {
	// Feature names what is missing, such as "802.1Q VLAN devices".
	Feature string
	// Config is the kernel configuration option that provides it, such as
	// "CONFIG_VLAN_8021Q".
	Config string
	// Err is the underlying error the kernel returned, if any.
	Err error
}

func (e *KernelFeatureError) Error() string {
	s := "network: kernel feature missing: " + e.Feature
	if e.Config != "" {
		s += " (" + e.Config + ")"
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Is reports whether target is [ErrKernelFeatureMissing] or
// [errors.ErrUnsupported].
func (e *KernelFeatureError) Is(target error) bool {
	return target == ErrKernelFeatureMissing || target == errors.ErrUnsupported
}

// Unwrap returns the kernel's error.
func (e *KernelFeatureError) Unwrap() error { return e.Err }
