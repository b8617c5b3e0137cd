package hypervisor

import (
	"context"
	"fmt"
	"time"
)

// ReconcilePolicy says what [Reconciler.Reconcile] does with what it finds.
type ReconcilePolicy int

// Reconcile policies.
const (
	// ReconcileReportOnly only reports. It is the zero value.
	ReconcileReportOnly ReconcilePolicy = iota
	// ReconcileStop stops unknown and half-spawned instances (they are
	// kept, marked stopped by the driver) and changes nothing else.
	ReconcileStop
	// ReconcileRemove destroys unknown and half-spawned instances and
	// removes state records that have no instance.
	ReconcileRemove
)

var policyNames = [...]string{ReconcileReportOnly: "report", ReconcileStop: "stop", ReconcileRemove: "remove"}

// String returns "report", "stop" or "remove".
func (p ReconcilePolicy) String() string {
	if p >= 0 && int(p) < len(policyNames) {
		return policyNames[p]
	}
	return fmt.Sprintf("ReconcilePolicy(%d)", int(p))
}

// ReconcileOptions tunes [Reconciler.Reconcile].
type ReconcileOptions struct {
	// Known are the IDs of the instances the caller (the agent's database)
	// knows. An instance of this driver whose ID is not in Known is
	// unknown. Nil is the empty set: every instance is unknown.
	Known []string
	// Policy says what to do with what is found; the zero value reports
	// only.
	Policy ReconcilePolicy
	// Resume also resumes the instances whose intended state is running
	// but that are stopped, as [Resumer.Resume] does (only known ones).
	Resume bool
}

// Validate checks the options: a known policy and valid IDs.
func (o ReconcileOptions) Validate() error {
	if o.Policy < ReconcileReportOnly || o.Policy > ReconcileRemove {
		return fmt.Errorf("%w: unknown reconcile policy %d", ErrInvalidArgument, int(o.Policy))
	}
	for _, id := range o.Known {
		if err := ValidateID(id); err != nil {
			return err
		}
	}
	return nil
}

// ReconcileReport is what a reconcile found and did. Every slice is sorted
// by ID; an ID is in at most one of Unknown, HalfSpawned and Orphaned.
type ReconcileReport struct {
	// Unknown are instances of this driver that the caller does not know.
	Unknown []string `json:"unknown,omitempty"`
	// HalfSpawned are instances whose spawn never finished (the process
	// that spawned them died in the middle) and that no call is working on.
	HalfSpawned []string `json:"half_spawned,omitempty"`
	// Orphaned are IDs with a state record of this driver but no instance
	// (no container).
	Orphaned []string `json:"orphaned,omitempty"`
	// Missing are known IDs that have no instance.
	Missing []string `json:"missing,omitempty"`
	// Busy are instances that a call was working on (a spawn, say), or
	// that were created after the reconcile began: left alone.
	Busy []string `json:"busy,omitempty"`
	// Interrupted are instances on which an operation was left half done
	// by a process that died (see "Crash recovery" in the package
	// documentation). With a policy other than report-only, the operation
	// was finished or undone before anything else; an instance may also
	// be in one of the lists above.
	Interrupted []string `json:"interrupted,omitempty"`

	// Stopped, Removed and Resumed are what the policy did.
	Stopped []string `json:"stopped,omitempty"`
	Removed []string `json:"removed,omitempty"`
	Resumed []string `json:"resumed,omitempty"`
	// Failed are the actions that failed, one per ID.
	Failed []InstanceError `json:"failed,omitempty"`
}

// InstanceError is an action on one instance that failed.
type InstanceError struct {
	ID  string `json:"id"`
	Err error  `json:"-"`
}

// Error returns the ID and the cause.
func (e InstanceError) Error() string { return e.ID + ": " + e.Err.Error() }

// Unwrap returns the cause.
func (e InstanceError) Unwrap() error { return e.Err }

// Reconciler compares the backend's view with the caller's.
type Reconciler interface {
	// Reconcile compares what the backend holds (its engine objects and
	// its state records) with the instances the caller knows, reports the
	// differences and acts on them by opts.Policy. It never touches an
	// instance that a call is working on (a spawn in progress) or that was
	// created after Reconcile began: those are reported Busy. It is
	// idempotent: a second call with the same options finds nothing more
	// to do. When the backend fails in the middle, the report holds what
	// was done and the error wraps ErrUnavailable; nothing is removed
	// unless its absence was seen.
	Reconcile(ctx context.Context, opts ReconcileOptions) (ReconcileReport, error)
}

// ResumeOptions tunes [Resumer.Resume].
type ResumeOptions struct {
	// Only, if not empty, restricts the resume to these IDs.
	Only []string
}

// ResumeReport says which instances a resume started.
type ResumeReport struct {
	// Resumed were stopped, were intended to run, and run now.
	Resumed []string `json:"resumed,omitempty"`
	// Failed could not be started; they are left stopped.
	Failed []InstanceError `json:"failed,omitempty"`
	// Busy were skipped because a call was working on them.
	Busy []string `json:"busy,omitempty"`
	// Interrupted had an operation left half done by a process that
	// died; it was finished or undone first (see "Crash recovery" in the
	// package documentation).
	Interrupted []string `json:"interrupted,omitempty"`
	// Time is when the resume began.
	Time time.Time `json:"time"`
}

// Resumer brings instances back after a host or engine restart.
type Resumer interface {
	// Resume starts every instance whose intended state is running (the
	// last start, spawn, reboot or restore succeeded and no stop, power
	// off or soft delete came after it) but that is not running now, as
	// after an engine or host restart, with the limits it had. Paused
	// instances are left paused. An instance that fails to start is
	// reported and left stopped; the others are still resumed.
	Resume(ctx context.Context, opts ResumeOptions) (ResumeReport, error)
}
