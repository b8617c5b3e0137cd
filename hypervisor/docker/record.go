package docker

import (
	"time"

	"github.com/dockervisor/dockervisor/hypervisor"
)

// instanceRecord is the durable, mutable state of one instance: what must
// survive an agent restart and cannot live in the container's labels,
// which are fixed at create. Every per-instance fact the driver keeps goes
// here, as a field with omitempty, so that records written before the
// field existed still decode (to its zero value).
type instanceRecord struct {
	// SoftDeleted marks a soft-deleted instance.
	SoftDeleted bool `json:"soft_deleted,omitempty"`
	// PoweredOff records that the driver stopped the instance on purpose,
	// so that its exit is a shutdown, not a crash.
	PoweredOff bool `json:"powered_off,omitempty"`
	// LastShutdown is how the last stop of an OS instance went.
	LastShutdown *hypervisor.ShutdownReport `json:"last_shutdown,omitempty"`
	// Metadata replaces the spawn-time metadata of the labels once
	// MetadataSet (by UpdateMetadata).
	Metadata    map[string]string `json:"metadata,omitempty"`
	MetadataSet bool              `json:"metadata_set,omitempty"`
	// VIFs are the instance's plugged VIFs with their guest devices, in
	// device order: what every start attaches (see attachVIFs).
	VIFs []vifRecord `json:"vifs,omitempty"`
	// Spawning marks a spawn in progress: written before the container is
	// created, cleared when the spawn finishes. Left behind by a spawn
	// that died in the middle (see Reconcile).
	Spawning bool `json:"spawning,omitempty"`
	// CreatedAt is when the spawn began, on this host's clock.
	CreatedAt time.Time `json:"created_at,omitzero"`
	// Intent is the power state the driver last left the instance in on
	// request: intentRunning, intentStopped or intentCreated. Empty in
	// records written before it existed (see intendedRunning).
	Intent string `json:"intent,omitempty"`
	// Flavor holds the limits of the last Resize; nil means the
	// spawn-time limits of the labels.
	Flavor *hypervisor.Flavor `json:"flavor,omitempty"`
	// Pending is the intent journal of the operation in progress on the
	// instance: written before the operation's first change, cleared by
	// the write that ends it. A record that still carries it once its
	// owner is gone was left by an agent that died in the middle; see
	// recover.go.
	Pending *pendingOp `json:"pending,omitempty"`
}

// Values of instanceRecord.Intent.
const (
	intentRunning = "running"
	intentStopped = "stopped"
	intentCreated = "created"
)

// intendedRunning reports whether the driver last left the instance
// running on request (spawned, started, rebooted, restored; paused
// counts). Records from before Intent existed: not powered off and not
// soft-deleted.
func (r instanceRecord) intendedRunning() bool {
	if r.SoftDeleted || r.Spawning {
		return false
	}
	if r.Intent != "" {
		return r.Intent == intentRunning
	}
	return !r.PoweredOff
}

// applyFlavor puts the limits of the last Resize, if any, on inst.
func (r instanceRecord) applyFlavor(inst *hypervisor.Instance) {
	if r.Flavor != nil {
		inst.VCPUs = r.Flavor.EffectiveVCPUs()
		inst.MemoryMB = r.Flavor.MemoryMB
	}
}
