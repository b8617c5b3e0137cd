package hypervisortest

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dockervisor/dockervisor/hypervisor"
)

func testPowerOffTimeout(t *testing.T, e *env) {
	spec := e.spec("stop")
	e.spawn(t, spec)
	ctx := t.Context()
	// A negative timeout kills at once, even a process that ignores the
	// graceful signal (as sleep does when it is PID 1).
	start := time.Now()
	require.NoError(t, e.d.PowerOff(ctx, spec.ID, hypervisor.StopOptions{Timeout: -1}))
	assert.Less(t, time.Since(start), 5*time.Second, "PowerOff with a negative timeout")
	assert.Equal(t, stS, e.info(t, spec.ID).State)

	require.NoError(t, e.d.PowerOn(ctx, spec.ID))
	start = time.Now()
	require.NoError(t, e.d.PowerOff(ctx, spec.ID, hypervisor.StopOptions{Timeout: stopTimeout}))
	assert.Less(t, time.Since(start), stopTimeout+5*time.Second, "PowerOff with a timeout of %s", stopTimeout)
	info := e.info(t, spec.ID)
	assert.Equal(t, stS, info.State, "a driver-requested stop is a shutdown, whatever the exit status")
	assert.Zero(t, info.PID)
}
