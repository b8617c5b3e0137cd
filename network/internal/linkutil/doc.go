// Package linkutil holds the netlink and network namespace helpers the VIF
// drivers share: a namespace held open by a file descriptor with a netlink
// handle bound to it ([NS]), one-call veth pairs whose peer is created in
// another namespace, ensure-bridge, idempotent deletes, dumps retried when
// the kernel interrupts them (through package nldump), the configuration
// of an instance's guest end (name, MAC, MTU, addresses, routes,
// loopback), and transmit checksum offload through the ethtool ioctl.
//
// Every helper works through the handle of the namespace it is called on:
// no helper switches the calling thread's namespace except [NS.Do], which
// runs a function on a locked OS thread for what netlink cannot do.
//
// Errors wrap the classes of package network: a namespace path that no
// longer exists is [network.ErrNamespaceGone], a device of the wrong kind
// is [network.ErrDeviceConflict], a missing kernel feature is a
// [network.KernelFeatureError].
package linkutil
