package docker

import (
	"github.com/moby/moby/api/types/container"

	"github.com/dockervisor/dockervisor/hypervisor"
)

// engineState is what the engine says about a container's process.
type engineState struct {
	Status    container.ContainerState
	ExitCode  int
	OOMKilled bool
}

// powerState maps the engine's view of a container and the driver's
// record of it to a hypervisor.State: the soft-deleted mark wins; an
// exited container is shut down when the driver stopped it or it exited
// with status 0 by itself (not killed for memory), and crashed otherwise.
func powerState(e engineState, rec instanceRecord) hypervisor.State {
	if rec.SoftDeleted {
		return hypervisor.StateSoftDeleted
	}
	switch e.Status {
	case container.StateRunning, container.StateRestarting:
		return hypervisor.StateRunning
	case container.StatePaused:
		return hypervisor.StatePaused
	case container.StateCreated:
		return hypervisor.StateCreated
	case container.StateExited, container.StateDead:
		if rec.PoweredOff || (e.ExitCode == 0 && !e.OOMKilled && e.Status == container.StateExited) {
			return hypervisor.StateShutdown
		}
		return hypervisor.StateCrashed
	case container.StateRemoving:
		return hypervisor.StateShutdown
	}
	return hypervisor.StateUnknown
}
