package docker

import "github.com/dockervisor/dockervisor/hypervisor"

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
