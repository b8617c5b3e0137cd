package errclass

import (
	"errors"
	"fmt"
	"slices"
)

// The error classes. Each is its own value; a class never wraps another.
var (
	// ErrNotFound means the object an operation names does not exist: an
	// instance, a store image, a command inside an instance, a resource
	// provider.
	ErrNotFound = errors.New("not found")
	// ErrAlreadyExists means an object with the requested identity exists
	// already: an instance ID, an image ID, a floating IP bound elsewhere.
	ErrAlreadyExists = errors.New("already exists")
	// ErrInvalidState means the operation is not valid in the object's
	// current state (pause of a stopped instance, deletion of a security
	// group in use). In the hypervisor package the chain holds a
	// *hypervisor.StateError with the details.
	ErrInvalidState = errors.New("invalid state for operation")
	// ErrInvalidArgument means the caller's input was rejected before
	// anything was changed: an empty ID, a bad name, absurd resources, an
	// archive that is not an image.
	ErrInvalidArgument = errors.New("invalid argument")
	// ErrConflict means a concurrent change got there first (Placement's
	// generation conflicts, after the retries): reading again and
	// retrying may succeed.
	ErrConflict = errors.New("conflict")
	// ErrResourceExhausted means there is not enough of a resource for the
	// request: no host has room for an instance.
	ErrResourceExhausted = errors.New("resource exhausted")
	// ErrUnavailable means a service the operation needs (the Docker
	// engine, an image store, Open vSwitch, Placement) could not be
	// reached or failed; retrying later may succeed.
	ErrUnavailable = errors.New("unavailable")
	// ErrNotSupported means the backend, as configured, cannot do this,
	// or the host lacks what it needs (a kernel feature). It wraps
	// [errors.ErrUnsupported].
	ErrNotSupported error = notSupported{}
	// ErrCorrupt means data does not match its checksum, or a record
	// cannot be read back: something was damaged in store or in transit.
	ErrCorrupt = errors.New("data corrupt")
	// ErrGuestFailed means software inside an instance reported a
	// failure: its operating system booted degraded, cloud-init failed.
	// The instance itself is running.
	ErrGuestFailed = errors.New("guest reported a failure")
)

// notSupported is ErrNotSupported: "not supported", wrapping
// errors.ErrUnsupported.
type notSupported struct{}

func (notSupported) Error() string { return "not supported" }
func (notSupported) Unwrap() error { return errors.ErrUnsupported }

// Class is one error class: its sentinel and its name in machine-readable
// output.
type Class struct {
	// Err is the class's sentinel, such as [ErrNotFound].
	Err error
	// Name is the class's name in lower snake case, such as "not_found",
	// for JSON output and logs.
	Name string
}

// classes is the one table of classes.
var classes = []Class{
	{ErrNotFound, "not_found"},
	{ErrAlreadyExists, "already_exists"},
	{ErrInvalidState, "invalid_state"},
	{ErrInvalidArgument, "invalid_argument"},
	{ErrConflict, "conflict"},
	{ErrResourceExhausted, "resource_exhausted"},
	{ErrUnavailable, "unavailable"},
	{ErrNotSupported, "not_supported"},
	{ErrCorrupt, "corrupt"},
	{ErrGuestFailed, "guest_failed"},
}

// All returns every class, in a fixed order. The slice is a copy.
func All() []Class { return slices.Clone(classes) }

// Of returns the class err wraps, and false when it wraps none. An error
// that wraps several (which this module's errors never do) gives the
// first in [All]'s order.
func Of(err error) (Class, bool) {
	if err == nil {
		return Class{}, false
	}
	for _, c := range classes {
		if errors.Is(err, c.Err) {
			return c, true
		}
	}
	return Class{}, false
}

// Has reports whether err wraps any class.
func Has(err error) bool {
	_, ok := Of(err)
	return ok
}

// Matching returns every class err wraps: one for any error of this
// module. Tests use it to check that rule.
func Matching(err error) []Class {
	var out []Class
	for _, c := range classes {
		if errors.Is(err, c.Err) {
			out = append(out, c)
		}
	}
	return out
}

// New returns a sentinel error of a package, with its own message, that
// wraps parent: a class, or another package's sentinel that refines one
// (network.ErrDeviceNameTooLong is a network.ErrInvalidVIF, which is an
// [ErrInvalidArgument]). errors.Is holds for the sentinel itself, its
// parent and the class; its message is msg alone (say
// "image: checksum mismatch"). New panics unless parent wraps exactly one
// class, so a sentinel wraps exactly one class by construction.
func New(msg string, parent error) error {
	if n := len(Matching(parent)); n != 1 {
		panic(fmt.Sprintf("errclass.New(%q): the parent wraps %d classes, not one", msg, n))
	}
	return &sentinel{msg: msg, parent: parent}
}

// sentinel is an error made by New.
type sentinel struct {
	msg    string
	parent error
}

func (e *sentinel) Error() string { return e.msg }
func (e *sentinel) Unwrap() error { return e.parent }
