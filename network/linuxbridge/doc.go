// Package linuxbridge is the VIF driver for ports on a Linux bridge
// (VIF type "bridge", as Neutron's Linux bridge agent binds them).
//
// Plug ensures the VIF's bridge in the host namespace (created on demand,
// up, marked as ours with the interface alias "dockervisor"). Attach
// creates a veth in one netlink request: its host end "tap" + the port
// ID's first 11 characters on the bridge, its guest end directly inside
// the instance's namespace under the target's name (eth0, eth1…), with the
// VIF's MAC and MTU; then it adds the fixed IPs (IPv6 without duplicate
// address detection, so they work at once), the host routes and the
// default routes the target asks for, and sets loopback up. The guest end
// dies with the instance's namespace, so a backend attaches again after
// every start; the bridge stays plugged while the instance is stopped.
//
// # Host namespace
//
// [WithHostNetNS] puts the host side in another network namespace than the
// process's own: tests use a private one, labs one per simulated host.
//
// # Idempotency
//
// Plug twice is Plug once. Attach replaces an earlier attachment of the
// same VIF. Detach and Unplug of what is gone succeed. Unplug deletes the
// tap and then the bridge, if this package (or another driver of this
// module) created it and no port is left on it; a bridge made by someone
// else is never deleted.
//
// # Errors
//
// A malformed VIF is [network.ErrInvalidVIF] (a bridge name over 15 bytes
// also [network.ErrDeviceNameTooLong]), a VIF of another type
// [network.ErrUnsupportedVIFType], a bad target [network.ErrInvalidTarget],
// an instance whose process died [network.ErrNamespaceGone], a device name
// taken by something else [network.ErrDeviceConflict]. A failed call
// leaves nothing it created.
//
// # Concurrency
//
// A Driver is safe for concurrent use; changes to one bridge's ports are
// serialised within the Driver.
package linuxbridge
