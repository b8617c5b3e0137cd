package hypervisor

import (
	"context"
	"time"
)

// Event types of operations that are not a process start or exit. Each
// follows the process events the operation caused.
const (
	EventSoftDeleted EventType = "soft-deleted"
	EventRestored    EventType = "restored"
	EventRebooted    EventType = "rebooted"
	EventResized     EventType = "resized"
)

// EventReason says why an event happened.
type EventReason string

// Event reasons.
const (
	// ReasonRequested: an operation of this driver caused it; the event's
	// Operation names it ("power-off", "reboot", "spawn"…).
	ReasonRequested EventReason = "requested"
	// ReasonExited: the guest's process exited by itself; ExitCode says
	// with which status.
	ReasonExited EventReason = "exited"
	// ReasonOOMKilled: the kernel's OOM killer killed the guest.
	ReasonOOMKilled EventReason = "oom-killed"
	// ReasonEngineStopped: the engine (or the host) stopped or restarted,
	// taking the guest down with it.
	ReasonEngineStopped EventReason = "engine-stopped"
	// ReasonExternal: something other than this driver acted on the
	// instance through the engine (an operator, another tool).
	ReasonExternal EventReason = "external"
)

// EventOptions tunes [EventReplayer.EventsSince].
type EventOptions struct {
	// Since replays the events from this time on (inclusive), as far as
	// the backend still holds them, before the live ones. Zero: live only.
	Since time.Time
}

// EventReplayer streams events with replay.
//
// The slow-consumer rule: a stream never drops an event silently and
// never blocks the backend. It queues up to a bound for a consumer that
// reads slowly; a consumer that falls further behind gets its stream ended
// with an error of the ErrUnavailable class (after every event queued
// before), and resubscribes with Since set to the time of the last event
// it read.
type EventReplayer interface {
	// EventsSince is [EventSource.Events] with replay: the events since
	// opts.Since that the backend still holds, in time order, then the
	// live ones. A stream that ends because the backend went away (an
	// engine restart) ends with an error of the ErrUnavailable class.
	EventsSince(ctx context.Context, opts EventOptions) (<-chan Event, <-chan error)
}
