package hypervisor

import (
	"errors"
	"fmt"
	"strings"

	"github.com/dockervisor/dockervisor/errclass"
)

// Error classes: the module's classes of package errclass, re-exported.
// Every error a Driver returns wraps exactly one of them (an error from
// any package of this module does), and callers test for them with
// [errors.Is]: errors.Is(err, ErrNotFound) holds for a missing instance,
// image or command alike. Sentinels such as [ErrImageNotFound] refine a
// class. The backend's own error stays in the chain as well.
var (
	// ErrNotFound means the object does not exist: the instance (or, as
	// [ErrImageNotFound], its image; as [ErrCommandNotFound], an exec's
	// command).
	ErrNotFound = errclass.ErrNotFound
	// ErrAlreadyExists means an instance with the spec's ID exists already.
	ErrAlreadyExists = errclass.ErrAlreadyExists
	// ErrInvalidState means the operation is not valid in the instance's
	// current state. The chain holds a *[StateError] with the details.
	ErrInvalidState = errclass.ErrInvalidState
	// ErrInvalidArgument means the caller's input was rejected before
	// anything was changed: an empty ID, a bad name, absurd resources.
	ErrInvalidArgument = errclass.ErrInvalidArgument
	// ErrConflict means a concurrent change got there first; retrying may
	// succeed.
	ErrConflict = errclass.ErrConflict
	// ErrResourceExhausted means there is not enough of a resource for
	// the request, such as no host with room for an instance.
	ErrResourceExhausted = errclass.ErrResourceExhausted
	// ErrUnavailable means the backend (the engine), or a service it needs
	// (the image store, Open vSwitch), could not be reached or is not
	// usable, such as an engine whose API is too old.
	ErrUnavailable = errclass.ErrUnavailable
	// ErrNotSupported means the backend, as configured, cannot do this. It
	// wraps [errors.ErrUnsupported].
	ErrNotSupported = errclass.ErrNotSupported
	// ErrCorrupt means data does not match its checksum (a store image),
	// or a record cannot be read back.
	ErrCorrupt = errclass.ErrCorrupt
	// ErrGuestFailed means software inside an instance reported a
	// failure ([ErrDegraded], [ErrCloudInit]); the instance is running.
	ErrGuestFailed = errclass.ErrGuestFailed
)

// ErrImageNotFound means the instance's image is neither on the engine
// nor in the configured image store. It is an [ErrNotFound].
var ErrImageNotFound = errclass.New("hypervisor: image not found", ErrNotFound)

// OpError is the error type returned by Driver methods. It records the
// operation and the instance it was applied to, like [io/fs.PathError].
type OpError struct {
	Op  string // the operation, such as "spawn" or "power-off"
	ID  string // the instance ID; empty for host-level operations
	Err error  // the cause; wraps one of the error classes above
}

// Error returns "hypervisor: <op> <id>: <cause>".
func (e *OpError) Error() string {
	var b strings.Builder
	b.WriteString("hypervisor: ")
	b.WriteString(e.Op)
	if e.ID != "" {
		b.WriteString(" ")
		b.WriteString(e.ID)
	}
	b.WriteString(": ")
	if e.Err == nil {
		b.WriteString("<nil>")
	} else {
		b.WriteString(strings.TrimPrefix(e.Err.Error(), "hypervisor: "))
	}
	return b.String()
}

// Unwrap returns the cause.
func (e *OpError) Unwrap() error { return e.Err }

// StateError reports an operation refused because of the instance's state.
// errors.Is(err, ErrInvalidState) is true for it.
type StateError struct {
	Op      string  // the refused operation
	ID      string  // the instance ID
	Current State   // the state the instance is in
	Want    []State // the states in which Op is valid
}

// Error describes the refused transition.
func (e *StateError) Error() string {
	want := make([]string, len(e.Want))
	for i, s := range e.Want {
		want[i] = s.String()
	}
	return fmt.Sprintf("hypervisor: cannot %s instance %s in state %s (valid in: %s)",
		e.Op, e.ID, e.Current, strings.Join(want, ", "))
}

// Is makes errors.Is(err, ErrInvalidState) true.
func (e *StateError) Is(target error) bool { return target == ErrInvalidState }

// CheckState returns a *StateError when current is not one of want, and nil
// otherwise. Backends use it to apply the state table in the package docs.
func CheckState(op, id string, current State, want ...State) error {
	for _, w := range want {
		if current == w {
			return nil
		}
	}
	return &StateError{Op: op, ID: id, Current: current, Want: want}
}

// WrapOp returns err as an *[OpError] for op and id: nil for nil, and err
// itself when it already is an *OpError for the same op and id. Backends
// use it at the boundary of every Driver method.
func WrapOp(op, id string, err error) error {
	if err == nil {
		return nil
	}
	if oe, ok := errors.AsType[*OpError](err); ok && oe.Op == op && oe.ID == id {
		return err
	}
	return &OpError{Op: op, ID: id, Err: err}
}
