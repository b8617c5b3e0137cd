// Package ovsrun runs a private Open vSwitch for programs that need one
// and must not touch the host's (the lab demo): an ovsdb-server and an
// ovs-vswitchd with their own run directory, ovs-vswitchd inside a network
// namespace of its own, and an integration bridge. The bridge uses the
// kernel datapath (datapath_type=system) where the kernel has the Open
// vSwitch module, which is loaded as the distribution's service would, and
// the userspace datapath (datapath_type=netdev) where it has none, as on
// this project's CI kernel. It follows the recipe of the test harness
// (internal/testenv) without depending on package testing.
//
// Both datapaths open port devices by name in ovs-vswitchd's own namespace
// (the kernel keeps one datapath per network namespace), so the VIF
// driver's host side must live there too: pass Switch.NetNS to
// ovs.WithHostNetNS and Switch.DB to ovs.WithDB.
package ovsrun
