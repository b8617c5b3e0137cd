package hypervisortest

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dockervisor/dockervisor/hypervisor"
)

func testPowerOffTimeout(t *testing.T, e *env) {
	spec := e.spec("stop")
	e.spawn(t, spec)
	ctx := t.Context()
	// A negative timeout kills at once: the guest gets SIGKILL, not the
	// graceful signal on which the harness's command exits 0. (What a
	// test can know is how the process ended, not how long the call took
	// on a busy machine.)
	require.NoError(t, e.d.PowerOff(ctx, spec.ID, hypervisor.StopOptions{Timeout: -1}))
	info := e.info(t, spec.ID)
	assert.Equal(t, stS, info.State)
	assert.Equal(t, killedExitCode, info.ExitCode, "PowerOff with a negative timeout kills")

	require.NoError(t, e.d.PowerOn(ctx, spec.ID))
	require.NoError(t, e.d.PowerOff(ctx, spec.ID, hypervisor.StopOptions{Timeout: stopTimeout}))
	info = e.info(t, spec.ID)
	assert.Equal(t, stS, info.State, "a driver-requested stop is a shutdown, whatever the exit status")
	assert.Zero(t, info.PID)
}

// killedExitCode is the exit status of a process ended by SIGKILL.
const killedExitCode = 128 + 9
