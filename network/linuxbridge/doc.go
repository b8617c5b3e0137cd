// Package linuxbridge is the VIF driver for ports on a Linux bridge
// (VIF type "bridge", as Neutron's Linux bridge agent binds them).
//
// Plug ensures the VIF's bridge in the host namespace (created on demand,
// up). Attach creates a veth in one netlink request: its host end "tap" +
// the port ID's first 11 characters on the bridge, its guest end directly
// inside the instance's namespace under the target's name (eth0, eth1…),
// with the VIF's MAC and MTU; then it adds the fixed IPs (IPv6 without
// duplicate address detection, so they work at once), the host routes and
// the default routes the target asks for, and sets loopback up. The guest
// end dies with the instance's namespace, so a backend attaches again
// after every start; the bridge stays plugged while the instance is
// stopped.
//
// # Owner marks
//
// Every device the driver creates carries an owner mark as its interface
// alias ([network.DeviceOwner]): a bridge "dockervisor:linuxbridge", a tap
// "dockervisor:linuxbridge:<instance ID>:<port ID>". A tap is created under
// a temporary name and renamed once marked, so a device of a tap's name
// never exists without its mark. The driver deletes or replaces a tap only
// when it carries the mark of the instance and port of the call, and
// deletes a bridge only when it carries the driver's mark (or the alias
// "dockervisor" of earlier versions) and no port is left on it; a bridge
// made by someone else, with or without ports, is used as it is and never
// deleted or reconfigured.
//
// A device of the tap's name that carries another mark (another instance's
// port whose ID starts with the same 11 characters, or the same port
// plugged for another instance) or none (someone else's) is
// [network.ErrDeviceConflict]: Plug refuses it before creating anything,
// Attach refuses it, and Detach and Unplug leave it alone. See
// [network.DeviceNames] on name clashes.
//
// # Host namespace
//
// [WithHostNetNS] puts the host side in another network namespace than the
// process's own: tests use a private one, labs one per simulated host.
//
// # Idempotency
//
// Plug twice is Plug once. Attach replaces an earlier attachment of the
// same VIF. Detach and Unplug of what is gone succeed, and so do those of
// a VIF whose devices are someone else's (they are not touched).
//
// # Errors
//
// A malformed VIF is [network.ErrInvalidVIF] (a bridge name over 15 bytes
// also [network.ErrDeviceNameTooLong]), a VIF of another type
// [network.ErrUnsupportedVIFType], a bad target [network.ErrInvalidTarget],
// an instance whose process died [network.ErrNamespaceGone], a device name
// taken by something else, or a bridge name that is another port's bridge,
// [network.ErrDeviceConflict]. A failed call leaves nothing it created.
//
// # Concurrency
//
// A Driver is safe for concurrent use; changes to one bridge's ports are
// serialised within the Driver.
package linuxbridge
