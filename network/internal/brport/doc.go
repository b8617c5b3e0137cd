// Package brport is the part the Linux bridge drivers (linuxbridge,
// novanetwork) share: their options and constructor ([Options], [New]),
// a bridge ensured on demand in the host namespace, optionally with an
// uplink ([Uplink]), and a veth whose host end is a port of that bridge
// and whose guest end is created in the instance's namespace at attach.
//
// Every device the [Core] creates carries its owner mark
// (network.DeviceOwner): a bridge the driver's own, a tap the driver's,
// instance's and port's. The Core deletes, moves or reconfigures only
// devices with the mark it would have given them, and refuses a VIF whose
// tap name is taken by another device with network.ErrDeviceConflict
// before it creates anything.
package brport
