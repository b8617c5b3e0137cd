// Package ovsrun runs a private Open vSwitch for programs that need one
// and must not touch the host's (the lab demo): an ovsdb-server and an
// ovs-vswitchd with their own run directory, ovs-vswitchd inside a network
// namespace of its own, and an integration bridge on the userspace
// datapath (datapath_type=netdev; no kernel module is needed). It follows
// the recipe of the test harness (internal/testenv) without depending on
// package testing.
//
// The userspace datapath opens port devices by name in ovs-vswitchd's own
// namespace, so the VIF driver's host side must live there too: pass
// Switch.NetNS to ovs.WithHostNetNS and Switch.DB to ovs.WithDB.
package ovsrun
