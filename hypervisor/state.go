package hypervisor

import "fmt"

// State is the power state of an instance, in the vocabulary of a compute
// agent. The zero value is [StateUnknown].
type State int

// The states an instance can be in. See the package documentation for the
// transitions between them.
const (
	// StateUnknown means the backend reported something this package does
	// not understand.
	StateUnknown State = iota
	// StateCreated is an instance whose process was never started: one
	// spawned with [SpawnOptions] CreateOnly, until PowerOn, or one whose
	// spawn is in progress.
	StateCreated
	// StateRunning is an instance whose process runs.
	StateRunning
	// StatePaused is an instance whose processes are frozen (cgroup freezer).
	StatePaused
	// StateShutdown is an instance that was powered off through the driver,
	// or whose process exited with status 0.
	StateShutdown
	// StateCrashed is an instance whose process exited by itself with a
	// non-zero status, or was killed without the driver asking for it.
	StateCrashed
	// StateSoftDeleted is an instance that was soft-deleted: stopped and
	// marked for deletion, restorable until it is destroyed.
	StateSoftDeleted
)

var stateNames = [...]string{
	StateUnknown:     "unknown",
	StateCreated:     "created",
	StateRunning:     "running",
	StatePaused:      "paused",
	StateShutdown:    "shutdown",
	StateCrashed:     "crashed",
	StateSoftDeleted: "soft-deleted",
}

// String returns the lower-case name of the state, such as "running".
func (s State) String() string {
	if s >= 0 && int(s) < len(stateNames) {
		return stateNames[s]
	}
	return fmt.Sprintf("State(%d)", int(s))
}

// MarshalText encodes the state as its name, so that JSON output is stable
// and readable.
func (s State) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText decodes a state name written by [State.MarshalText].
func (s *State) UnmarshalText(b []byte) error {
	for i, n := range stateNames {
		if n == string(b) {
			*s = State(i)
			return nil
		}
	}
	return fmt.Errorf("%w: unknown state %q", ErrInvalidArgument, b)
}

// IsStopped reports whether the instance has no running or frozen process:
// created, shut down, crashed or soft-deleted.
func (s State) IsStopped() bool {
	switch s {
	case StateCreated, StateShutdown, StateCrashed, StateSoftDeleted:
		return true
	}
	return false
}
