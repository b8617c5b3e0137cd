package ovs

import (
	"github.com/dockervisor/dockervisor/errclass"
	"github.com/dockervisor/dockervisor/network"
)

// Errors of the ovs package. Every error from a [Runner] or a [Driver]
// operation that failed in Open vSwitch wraps exactly one of them, and
// each wraps one of the module's error classes (package errclass).
var (
	// ErrUnavailable means Open vSwitch did not answer: ovsdb-server is
	// down or hung, ovs-vswitchd did not apply a change within the
	// timeout, ovs-vsctl is missing, the database socket cannot be
	// reached or closed mid-read, or the caller's context ended. It is
	// also [network.ErrUnavailable].
	ErrUnavailable = errclass.New("ovs: Open vSwitch unavailable", network.ErrUnavailable)
	// ErrBridgeNotFound means the integration bridge does not exist. The
	// driver never creates or deletes the integration bridge. It is an
	// [errclass.ErrUnavailable]: the switch is not set up for VIFs.
	ErrBridgeNotFound = errclass.New("ovs: integration bridge not found", errclass.ErrUnavailable)
	// ErrPortFailed means Open vSwitch accepted a port but could not open
	// its device (ofport -1, or an error recorded on the interface). It is
	// an [errclass.ErrUnavailable].
	ErrPortFailed = errclass.New("ovs: port failed", errclass.ErrUnavailable)
	// ErrCommand is any other failed ovs-vsctl command or database read
	// (such as an error reply from ovsdb-server). It is an
	// [errclass.ErrUnavailable].
	ErrCommand = errclass.New("ovs: ovs-vsctl failed", errclass.ErrUnavailable)
)
