package docker

import (
	"testing"

	"github.com/moby/moby/api/types/container"
	"github.com/stretchr/testify/assert"

	"github.com/dockervisor/dockervisor/hypervisor"
)

func TestPowerState(t *testing.T) {
	var (
		none       = instanceRecord{}
		poweredOff = instanceRecord{PoweredOff: true}
		deleted    = instanceRecord{SoftDeleted: true, PoweredOff: true}
	)
	tests := []struct {
		name string
		e    engineState
		rec  instanceRecord
		want hypervisor.State
	}{
		{"running", engineState{Status: container.StateRunning}, none, hypervisor.StateRunning},
		{"restarting counts as running", engineState{Status: container.StateRestarting}, none, hypervisor.StateRunning},
		{"paused", engineState{Status: container.StatePaused}, none, hypervisor.StatePaused},
		{"created", engineState{Status: container.StateCreated}, none, hypervisor.StateCreated},
		{"exit 0 by itself", engineState{Status: container.StateExited}, none, hypervisor.StateShutdown},
		{"non-zero exit", engineState{Status: container.StateExited, ExitCode: 3}, none, hypervisor.StateCrashed},
		{"killed for memory", engineState{Status: container.StateExited, OOMKilled: true}, none, hypervisor.StateCrashed},
		{"dead", engineState{Status: container.StateDead}, none, hypervisor.StateCrashed},
		{"stopped by the driver, any status", engineState{Status: container.StateExited, ExitCode: 137}, poweredOff, hypervisor.StateShutdown},
		{"dead after the driver stopped it", engineState{Status: container.StateDead, ExitCode: 1}, poweredOff, hypervisor.StateShutdown},
		{"being removed", engineState{Status: container.StateRemoving}, none, hypervisor.StateShutdown},
		{"soft-deleted wins", engineState{Status: container.StateExited, ExitCode: 1}, deleted, hypervisor.StateSoftDeleted},
		{"soft-deleted even if running", engineState{Status: container.StateRunning}, deleted, hypervisor.StateSoftDeleted},
		{"unknown status", engineState{Status: "weird"}, none, hypervisor.StateUnknown},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, powerState(tt.e, tt.rec))
		})
	}
}

func TestHasProcess(t *testing.T) {
	for _, s := range []container.ContainerState{container.StateRunning, container.StatePaused, container.StateRestarting} {
		assert.True(t, hasProcess(s), s)
	}
	for _, s := range []container.ContainerState{container.StateCreated, container.StateExited, container.StateDead, container.StateRemoving} {
		assert.False(t, hasProcess(s), s)
	}
}
