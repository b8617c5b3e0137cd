package hypervisor

import (
	"context"

	"github.com/dockervisor/dockervisor/image"
	"github.com/dockervisor/dockervisor/network"
	"github.com/dockervisor/dockervisor/stats"
)

// Lifecycle is the core of every backend: the power operations of a
// hypervisor. See the package documentation for the state table.
type Lifecycle interface {
	// Spawn creates and starts an instance from spec. It returns
	// ErrAlreadyExists, without touching the existing instance, if the ID is
	// taken. A failed spawn leaves nothing behind.
	Spawn(ctx context.Context, spec InstanceSpec) (Instance, error)
	// Destroy stops and removes an instance and its state. It returns nil
	// if the instance does not exist.
	Destroy(ctx context.Context, id string) error
	// SoftDelete stops an instance and marks it soft-deleted. Nil if it is
	// soft-deleted already.
	SoftDelete(ctx context.Context, id string) error
	// Restore brings a soft-deleted instance back, running.
	Restore(ctx context.Context, id string) error
	// Reboot restarts a running instance: gracefully, or with opts.Hard by
	// killing it. A hard reboot also starts a shut-down or crashed instance.
	Reboot(ctx context.Context, id string, opts RebootOptions) error
	// PowerOff stops an instance gracefully, killing it after the timeout.
	// Nil if it is stopped already.
	PowerOff(ctx context.Context, id string, opts StopOptions) error
	// PowerOn starts a shut-down or crashed instance. Nil if it runs.
	PowerOn(ctx context.Context, id string) error
	// Pause freezes a running instance. Nil if it is paused already.
	Pause(ctx context.Context, id string) error
	// Unpause thaws a paused instance. Nil if it runs.
	Unpause(ctx context.Context, id string) error
	// Info returns the instance with its power state and resource usage.
	Info(ctx context.Context, id string) (InstanceInfo, error)
	// List returns this driver's instances, never other backend objects.
	List(ctx context.Context, opts ListOptions) ([]Instance, error)
}

// ConsoleReader reads an instance's console output.
type ConsoleReader interface {
	// ConsoleOutput returns the instance's console log (stdout and stderr,
	// demultiplexed, each stream in write order), bounded by opts.
	ConsoleOutput(ctx context.Context, id string, opts ConsoleOptions) ([]byte, error)
}

// EventSource streams lifecycle events.
type EventSource interface {
	// Events streams lifecycle events of this driver's instances until ctx
	// ends. The events of an operation that completes after Events returns
	// are delivered, in order per instance. Both channels are closed when
	// the stream ends; the error channel carries at most one error, and
	// none when ctx ended the stream.
	Events(ctx context.Context) (<-chan Event, <-chan error)
}

// VIFManager plugs an instance's virtual interfaces.
type VIFManager interface {
	// PlugVIFs plugs the host side of vifs and, if the instance runs,
	// attaches them inside it. The VIFs are remembered and re-attached on
	// every start. A failure unplugs what this call plugged.
	PlugVIFs(ctx context.Context, id string, vifs []network.VIF) error
	// UnplugVIFs detaches and unplugs vifs. Missing devices are not errors
	// (a missing instance is ErrNotFound).
	UnplugVIFs(ctx context.Context, id string, vifs []network.VIF) error
	// AttachInterface hot-plugs one VIF into a running instance.
	AttachInterface(ctx context.Context, id string, vif network.VIF) error
	// DetachInterface hot-unplugs one VIF from an instance.
	DetachInterface(ctx context.Context, id string, vif network.VIF) error
}

// Snapshotter snapshots instances into an image store.
type Snapshotter interface {
	// Snapshot stores the instance's file system as a new image and
	// returns its store metadata. A failure leaves nothing behind.
	Snapshot(ctx context.Context, id string, req SnapshotRequest) (image.Metadata, error)
}

// Rebuilder gives an instance a fresh file system (Nova's rebuild, and the
// way to revert an instance to a snapshot).
type Rebuilder interface {
	// Rebuild replaces the instance's file system with a fresh one from
	// image (a store image ID with an image store configured, such as a
	// snapshot's; otherwise an engine image reference), keeping its ID,
	// name, limits, command, environment, labels, metadata and VIFs. A
	// running instance runs again afterwards; a stopped one is left
	// stopped. See the state table for the states it is valid in. A
	// failure leaves the instance as it was, running if it ran.
	Rebuild(ctx context.Context, id, image string) error
}

// HostReporter reports the compute node's resources.
type HostReporter interface {
	// HostResources samples the node's CPU, memory and disk.
	HostResources(ctx context.Context) (stats.Host, error)
	// AvailableNodes returns the node names this driver serves.
	AvailableNodes(ctx context.Context) ([]string, error)
	// InstanceStats samples one instance's resource usage.
	InstanceStats(ctx context.Context, id string) (stats.Instance, error)
}

// Driver is what a backend implements, and what a compute agent drives. The
// component interfaces let a consumer depend only on what it uses.
type Driver interface {
	Lifecycle
	ConsoleReader
	EventSource
	VIFManager
	Snapshotter
	Rebuilder
	HostReporter
	GuestAccess
	MetadataUpdater
	// Capabilities reports which operations work as configured.
	Capabilities() Capabilities
	// Close releases the driver's resources. It does not touch instances.
	// It is idempotent. Calls after Close fail with ErrUnavailable.
	Close() error
}
