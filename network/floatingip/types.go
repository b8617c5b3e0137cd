package floatingip

import (
	"net/netip"

	"github.com/dockervisor/dockervisor/errclass"
	"github.com/dockervisor/dockervisor/network"
)

// Errors of package floatingip. Each wraps one of the module's error
// classes (package errclass), named in its documentation.
var (
	// ErrInvalidAddress means an address is not a usable unicast IPv4
	// address (floating IPs are IPv4, as in nova-network). It is an
	// [errclass.ErrInvalidArgument].
	ErrInvalidAddress = errclass.New("floatingip: invalid address", errclass.ErrInvalidArgument)
	// ErrAlreadyBound means the floating IP is bound to another fixed IP,
	// or the fixed IP to another floating IP. It is an
	// [errclass.ErrAlreadyExists].
	ErrAlreadyBound = errclass.New("floatingip: already bound", errclass.ErrAlreadyExists)
	// ErrNoInterface means the public interface does not exist in the host
	// namespace (it is not plugged). It is also [network.ErrInvalidVIF].
	ErrNoInterface = errclass.New("floatingip: public interface missing", network.ErrInvalidVIF)
)

// Binding is one floating IP bound to one fixed IP.
type Binding struct {
	Floating netip.Addr `json:"floating"`
	Fixed    netip.Addr `json:"fixed"`
}
