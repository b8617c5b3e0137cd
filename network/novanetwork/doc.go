// Package novanetwork is the VIF driver for nova-network's bridges (VIF
// type "bridge"): flat networks, a Linux bridge optionally with a host
// interface (bridge_interface) enslaved, and VLAN mode, where the bridge's
// uplink is an 802.1Q VLAN device "vlan<ID>" on bridge_interface.
//
// Plug creates what the VIF's network needs on demand, in this order:
// the VLAN device (VLAN mode), the bridge, the uplink enslaved to the
// bridge, and a failed Plug removes what it created. Attach, Detach and the
// host namespace option work as in package linuxbridge: a veth with its
// host end "tap…" on the bridge and its guest end created inside the
// instance's namespace.
//
// Every device the driver creates carries an owner mark as its interface
// alias ([network.DeviceOwner]), set before the device gets its name:
// bridges and VLAN devices "dockervisor:novanetwork", taps
// "dockervisor:novanetwork:<instance ID>:<port ID>". As in package
// linuxbridge, a tap name held by a device with another mark or none is
// [network.ErrDeviceConflict] (refused by Plug before anything is created),
// and only devices with the call's own mark are deleted or replaced.
//
// Unplug deletes the VIF's tap and, once no other port is left on a bridge
// this driver created, the bridge and the VLAN device it created; an
// enslaved host interface is released, never deleted. Devices made by
// someone else (a bridge, a VLAN device of the right VLAN, which are used
// as they are) are never deleted.
//
// # Kernels without 802.1Q
//
// On a kernel without VLAN devices (CONFIG_VLAN_8021Q unset), Plug of a
// VLAN-mode VIF returns a [*network.KernelFeatureError] (errors.Is
// [network.ErrKernelFeatureMissing] and errors.ErrUnsupported) naming the
// missing feature, and leaves nothing behind.
//
// # Errors and concurrency
//
// As in package linuxbridge; a host interface that is missing is
// [network.ErrInvalidVIF], one enslaved to another bridge
// [network.ErrDeviceConflict]. A Driver is safe for concurrent use.
package novanetwork
