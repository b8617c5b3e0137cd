package hypervisor

import (
	"context"
	"fmt"
)

// Flavor is the resources of an instance that can change while it exists:
// the new values, all of them, as in a Nova resize to a new flavor.
type Flavor struct {
	// VCPUs is the vCPU count (CPU shares); zero means 1.
	VCPUs int `json:"vcpus"`
	// HardCPULimit also caps CPU time at VCPUs whole CPUs.
	HardCPULimit bool `json:"hard_cpu_limit,omitempty"`
	// MemoryMB is the memory limit in MiB; the swap limit follows it (no
	// swap beyond the limit). Zero means no limit, which is valid only for
	// an instance that has none: a limit cannot be removed from a live
	// instance.
	MemoryMB int64 `json:"memory_mb"`
}

// EffectiveVCPUs returns VCPUs, with zero read as 1.
func (f Flavor) EffectiveVCPUs() int {
	if f.VCPUs == 0 {
		return 1
	}
	return f.VCPUs
}

// Validate checks the ranges of [InstanceSpec.Validate].
func (f Flavor) Validate() error {
	if f.VCPUs < 0 || f.VCPUs > MaxVCPUs {
		return fmt.Errorf("%w: vCPUs %d out of range 0..%d", ErrInvalidArgument, f.VCPUs, MaxVCPUs)
	}
	if f.MemoryMB < 0 || (f.MemoryMB > 0 && f.MemoryMB < MinMemoryMB) || f.MemoryMB > MaxMemoryMB {
		return fmt.Errorf("%w: memory %d MiB out of range (0 for no limit, or %d..%d)", ErrInvalidArgument, f.MemoryMB, MinMemoryMB, MaxMemoryMB)
	}
	return nil
}

// ResizeStates are the states in which [Resizer.Resize] is valid: every
// state but soft-deleted.
var ResizeStates = []State{StateCreated, StateRunning, StatePaused, StateShutdown, StateCrashed}

// LimitError reports a resize refused because the instance uses more than
// the new limit allows, or because the host cannot give what was asked.
// errors.Is(err, ErrInvalidArgument) is true for it.
type LimitError struct {
	ID       string // the instance
	Resource string // "memory" or "vcpus"
	Want     int64  // the requested limit (bytes for memory, CPUs for vcpus)
	Have     int64  // what the instance uses now, or the host offers
}

// Error describes the refused limit.
func (e *LimitError) Error() string {
	return fmt.Sprintf("hypervisor: %s limit %d of instance %s is below its current use or beyond the host (%d)", e.Resource, e.Want, e.ID, e.Have)
}

// Is makes errors.Is(err, ErrInvalidArgument) true.
func (e *LimitError) Is(target error) bool { return target == ErrInvalidArgument }

// Resizer changes an instance's limits in place.
type Resizer interface {
	// Resize changes the vCPUs, the hard CPU cap and the memory limit
	// (with its swap limit) of an instance, running or stopped, without
	// restarting it. A memory limit below what the instance uses now is a
	// *LimitError and changes nothing; so does anything invalid
	// (ErrInvalidArgument), a missing instance (ErrNotFound) or a
	// soft-deleted one (ErrInvalidState). The new limits are persisted,
	// hold across every later transition, and are what Info, List and
	// HostResources report.
	Resize(ctx context.Context, id string, f Flavor) error
}
