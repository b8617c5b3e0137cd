// Package novanetwork is the VIF driver for nova-network's bridges (VIF
// type "bridge"): flat networks, a Linux bridge optionally with a host
// interface (bridge_interface) enslaved, and VLAN mode, where the bridge's
// uplink is an 802.1Q VLAN device "vlan<ID>" on bridge_interface.
//
// Plug creates what the VIF's network needs on demand, in this order:
// the VLAN device (VLAN mode), the bridge, the uplink enslaved to the
// bridge. Each device it creates is marked with the interface alias
// "dockervisor", and a failed Plug removes what it created. Attach, Detach
// and the host namespace option work as in package linuxbridge: a veth with
// its host end "tap…" on the bridge and its guest end created inside the
// instance's namespace.
//
// Unplug deletes the VIF's tap and, once no other port is left on a bridge
// this module created, the bridge and the VLAN device it created; an
// enslaved host interface is released, never deleted. Devices made by
// someone else are left alone.
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
