package secgroup

import (
	"errors"
	"fmt"

	"github.com/dockervisor/dockervisor/network"
)

// Error classes of package secgroup. Every error a Firewall returns for bad
// input wraps one of them; such a call changes nothing in the kernel.
var (
	// ErrInvalidRule means a group or one of its rules is malformed: an
	// unknown direction, ethertype or protocol, a port range or ICMP
	// type/code out of range or on a protocol without ports, a CIDR that
	// is malformed, has host bits set or is of the other ethertype, both a
	// CIDR and a remote group, a bad group ID.
	ErrInvalidRule = errors.New("secgroup: invalid rule")
	// ErrUnknownGroup means a port or a remote-group rule names a group the
	// Firewall does not know.
	ErrUnknownGroup = errors.New("secgroup: unknown group")
	// ErrGroupInUse means a group cannot be deleted: a port is in it or a
	// rule of another group names it as its remote group.
	ErrGroupInUse = errors.New("secgroup: group in use")
	// ErrInvalidPort means a port description is malformed (no MAC, a bad
	// port ID or device name, a duplicate). It is also
	// [network.ErrInvalidVIF].
	ErrInvalidPort = fmt.Errorf("secgroup: invalid port: %w", network.ErrInvalidVIF)
	// ErrPortNotPlugged means the port's bridge does not exist in the host
	// namespace: the VIF driver has not plugged it.
	ErrPortNotPlugged = errors.New("secgroup: port not plugged")
	// ErrNotEnforceable means the VIF kind gives the host nothing to filter
	// on (an Open vSwitch port plugged directly, without the per-port
	// Linux bridge of a hybrid plug): security groups cannot be enforced
	// on it. It is also [errors.ErrUnsupported].
	ErrNotEnforceable = fmt.Errorf("secgroup: port filtering impossible for this VIF kind: %w", errors.ErrUnsupported)
)
