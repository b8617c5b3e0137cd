package network

import (
	"errors"

	"github.com/dockervisor/dockervisor/errclass"
)

// Errors of the network package. Every error a VIF driver returns wraps
// one of them (or an error of the driver's own package), so callers test
// with errors.Is; each wraps one of the module's error classes (package
// errclass), named in its documentation.
var (
	// ErrUnsupportedVIFType means no driver handles the VIF's type. It is
	// an [errclass.ErrInvalidArgument].
	ErrUnsupportedVIFType = errclass.New("network: unsupported VIF type", errclass.ErrInvalidArgument)
	// ErrInvalidVIF means the VIF description is incomplete or malformed
	// (a bad MAC, CIDR, MTU, an IP outside its subnet, two VIFs with one
	// MAC or one port ID...). It is an [errclass.ErrInvalidArgument].
	ErrInvalidVIF = errclass.New("network: invalid VIF", errclass.ErrInvalidArgument)
	// ErrDeviceNameTooLong means a device name (a bridge, say) is longer
	// than the kernel's limit of [MaxDeviceNameLen] bytes. It is also
	// [ErrInvalidVIF].
	ErrDeviceNameTooLong = errclass.New("network: invalid VIF: device name too long", ErrInvalidVIF)
	// ErrInvalidTarget means an attach target is malformed (no namespace
	// path, a bad device name). It is an [errclass.ErrInvalidArgument].
	ErrInvalidTarget = errclass.New("network: invalid attach target", errclass.ErrInvalidArgument)
	// ErrNamespaceGone means the instance's network namespace no longer
	// exists (its process died). It is an [errclass.ErrInvalidState]: the
	// instance is no longer running.
	ErrNamespaceGone = errclass.New("network: namespace no longer exists", errclass.ErrInvalidState)
	// ErrDeviceConflict means a device the driver needs exists but is not
	// usable: a name taken by a device the driver did not create for this
	// instance and port (see [DeviceOwner]), or a bridge name taken by a
	// device of another kind, say. The other device is left as it is. It
	// is an [errclass.ErrInvalidArgument]: the VIF names a device it
	// cannot have.
	ErrDeviceConflict = errclass.New("network: conflicting device", errclass.ErrInvalidArgument)
	// ErrKernelFeatureMissing means the running kernel lacks a feature the
	// VIF needs (802.1Q VLAN devices, say). It is an
	// [errclass.ErrNotSupported], and so also [errors.ErrUnsupported]. See
	// [KernelFeatureError].
	ErrKernelFeatureMissing = errclass.New("network: kernel feature missing", errclass.ErrNotSupported)
	// ErrUnavailable means a service the driver needs (such as Open
	// vSwitch's database) does not answer. It is an
	// [errclass.ErrUnavailable].
	ErrUnavailable = errclass.New("network: service unavailable", errclass.ErrUnavailable)
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

// Is reports whether target is [ErrKernelFeatureMissing] or what that
// wraps ([errclass.ErrNotSupported], [errors.ErrUnsupported]).
func (e *KernelFeatureError) Is(target error) bool {
	return target == ErrKernelFeatureMissing || errors.Is(ErrKernelFeatureMissing, target)
}

// Unwrap returns the kernel's error.
func (e *KernelFeatureError) Unwrap() error { return e.Err }
