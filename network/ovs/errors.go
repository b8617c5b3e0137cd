package ovs

import (
	"errors"
	"fmt"

	"github.com/dockervisor/dockervisor/network"
)

// Error classes of the ovs package. Every error from a [Runner] or a
// [Driver] operation that failed in Open vSwitch wraps exactly one of them.
var (
	// ErrUnavailable means Open vSwitch did not answer: ovsdb-server is
	// down or hung, ovs-vswitchd did not apply a change within the
	// timeout, ovs-vsctl is missing, the database socket cannot be
	// reached or closed mid-read, or the caller's context ended. It is
	// also [network.ErrUnavailable].
	ErrUnavailable = fmt.Errorf("ovs: Open vSwitch unavailable: %w", network.ErrUnavailable)
	// ErrBridgeNotFound means the integration bridge does not exist. The
	// driver never creates or deletes the integration bridge.
	ErrBridgeNotFound = errors.New("ovs: integration bridge not found")
	// ErrPortFailed means Open vSwitch accepted a port but could not open
	// its device (ofport -1, or an error recorded on the interface).
	ErrPortFailed = errors.New("ovs: port failed")
	// ErrCommand is any other failed ovs-vsctl command or database read
	// (such as an error reply from ovsdb-server).
	ErrCommand = errors.New("ovs: ovs-vsctl failed")
)
