// Package network is the contract of an instance's virtual interfaces
// (VIFs): the VIF model (addresses, subnets, routes, DNS servers; the MAC
// as text), its validation ([VIF.Validate], [ValidateVIFs]), the parser of
// Nova's network_info ([ParseNetworkInfo]), the host device names derived
// from a port ID ([DeviceNames], Nova's tap/qbr/qvb/qvo prefixes, always
// within the kernel's 15-byte limit), the owner mark every host device a
// driver creates carries ([DeviceOwner]), the [VIFDriver] interface with its
// attach [Target], a [Dispatcher] that serves mixed VIF types with one
// driver per type, and the error classes VIF operations return.
//
// The package has no Linux code and builds on every OS; the drivers live
// in their own packages (linuxbridge, ovs, novanetwork) and
// networktest holds a recording fake and the drivers' conformance suite.
//
// # Errors
//
// Every error wraps one class: [ErrInvalidVIF] (with
// [ErrDeviceNameTooLong] as a sub-class), [ErrUnsupportedVIFType],
// [ErrInvalidTarget], [ErrNamespaceGone], [ErrDeviceConflict],
// [ErrKernelFeatureMissing] (a [*KernelFeatureError], also
// errors.ErrUnsupported) or [ErrUnavailable]. Test with errors.Is.
package network
