// Package ovsrun runs a private Open vSwitch, for programs that need one
// and must not touch the host's (tests, the lab demo, dvctl's labs): an
// ovsdb-server and an ovs-vswitchd with a run directory of their own
// (database, sockets, pid files, logs), ovs-vswitchd inside a network
// namespace of its own if asked, and bridges of one datapath type: the
// userspace datapath (datapath_type=netdev, the default; no kernel module
// needed) or the kernel's (datapath_type=system).
//
// The daemons are children of the calling process that die with it
// (a parent-death signal), or, with [Options.Detach], daemons that outlive
// it: [Open] finds such a switch again by its run directory, and [Stop]
// ends it from any process, by its pid files.
//
// [PickDatapath] picks the kernel datapath where the kernel has the Open
// vSwitch module (loading it as the distribution's service would) and the
// userspace one elsewhere. Both datapaths open port devices by name in
// ovs-vswitchd's own namespace (the kernel keeps one datapath per network
// namespace), so a VIF driver's host side must live there too: pass
// [Switch.NetNS] to ovs.WithHostNetNS and [Switch.DB] to ovs.WithDB.
//
// Linux only; on other systems the package is empty.
package ovsrun
