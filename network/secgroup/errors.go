package secgroup

import (
	"github.com/dockervisor/dockervisor/errclass"
	"github.com/dockervisor/dockervisor/network"
)

// Errors of package secgroup. Every error a Firewall returns for bad input
// wraps one of them; such a call changes nothing in the kernel. Each wraps
// one of the module's error classes (package errclass).
var (
	// ErrInvalidRule means a group or one of its rules is malformed: an
	// unknown direction, ethertype or protocol, a port range or ICMP
	// type/code out of range or on a protocol without ports, a CIDR that
	// is malformed, has host bits set or is of the other ethertype, both a
	// CIDR and a remote group, a bad group ID.
	// It is an [errclass.ErrInvalidArgument].
	ErrInvalidRule = errclass.New("secgroup: invalid rule", errclass.ErrInvalidArgument)
	// ErrUnknownGroup means a port or a remote-group rule names a group the
	// Firewall does not know. It is an [errclass.ErrInvalidArgument].
	ErrUnknownGroup = errclass.New("secgroup: unknown group", errclass.ErrInvalidArgument)
	// ErrGroupInUse means a group cannot be deleted: a port is in it or a
	// rule of another group names it as its remote group. It is an
	// [errclass.ErrInvalidState].
	ErrGroupInUse = errclass.New("secgroup: group in use", errclass.ErrInvalidState)
	// ErrInvalidPort means a port description is malformed (no MAC, a bad
	// port ID or device name, a duplicate). It is also
	// [network.ErrInvalidVIF].
	ErrInvalidPort = errclass.New("secgroup: invalid port", network.ErrInvalidVIF)
	// ErrPortNotPlugged means the port's bridge does not exist in the host
	// namespace: the VIF driver has not plugged it. It is an
	// [errclass.ErrInvalidState].
	ErrPortNotPlugged = errclass.New("secgroup: port not plugged", errclass.ErrInvalidState)
	// ErrNotEnforceable means the VIF kind gives the host nothing to filter
	// on (an Open vSwitch port plugged directly, without the per-port
	// Linux bridge of a hybrid plug): security groups cannot be enforced
	// on it. It is an [errclass.ErrNotSupported], and so also
	// [errors.ErrUnsupported].
	ErrNotEnforceable = errclass.New("secgroup: port filtering impossible for this VIF kind", errclass.ErrNotSupported)
)
