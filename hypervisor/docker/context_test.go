package docker

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dockervisor/dockervisor/hypervisor"
)

func TestCallWaitingForLockHonoursContext(t *testing.T) {
	e := newEnv(t)
	e.spawn(e.spec("busy"))
	unlock, err := e.drv.locks.Lock(t.Context(), "busy")
	require.NoError(t, err)
	defer unlock()
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	err = e.drv.Pause(ctx, "busy")
	require.ErrorIs(t, err, context.DeadlineExceeded)
	var oe *hypervisor.OpError
	require.ErrorAs(t, err, &oe)
	unlock()
	assert.Equal(t, hypervisor.StateRunning, e.state("busy"), "nothing happened")
}

func TestCancelledContextChangesNothing(t *testing.T) {
	e := newEnv(t)
	e.spawn(e.spec("cc"))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	require.ErrorIs(t, e.drv.PowerOff(ctx, "cc", hypervisor.StopOptions{}), context.Canceled)
	_, err := e.drv.Spawn(ctx, e.spec("cc2"))
	require.ErrorIs(t, err, context.Canceled)
	assert.Equal(t, hypervisor.StateRunning, e.state("cc"))
	assert.Zero(t, e.containersNamed(e.drv.containerName("cc2")))
}

func TestSpawnCancelledMidwayRollsBack(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	e.drv.stepHook = func(s string) {
		if s == StepStart {
			cancel() // the caller gives up after the container exists
		}
	}
	_, err := e.drv.Spawn(ctx, e.spec("mid"))
	require.ErrorIs(t, err, context.Canceled)
	assert.Zero(t, e.containersNamed(e.drv.containerName("mid")), "the container was removed")
	assert.NoFileExists(t, e.recordPath("mid"))
}
