package docker

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dockervisor/dockervisor/hypervisor"
)

// Info, ConsoleOutput and InstanceStats wait for the call that holds the
// instance, as the package documentation promises; List does not.
func TestReadsWaitForTheInstanceLock(t *testing.T) {
	e := newEnv(t)
	e.spawn(e.spec("rd"))
	unlock, err := e.drv.locks.Lock(t.Context(), "rd")
	require.NoError(t, err)
	defer unlock()

	short := func() context.Context {
		ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
		t.Cleanup(cancel)
		return ctx
	}
	_, err = e.drv.Info(short(), "rd")
	assert.ErrorIs(t, err, context.DeadlineExceeded, "Info")
	_, err = e.drv.ConsoleOutput(short(), "rd", hypervisor.ConsoleOptions{})
	assert.ErrorIs(t, err, context.DeadlineExceeded, "ConsoleOutput")
	_, err = e.drv.InstanceStats(short(), "rd")
	assert.ErrorIs(t, err, context.DeadlineExceeded, "InstanceStats")

	list, err := e.drv.List(t.Context(), hypervisor.ListOptions{})
	require.NoError(t, err, "List takes no instance lock")
	assert.Len(t, list, 1)
	unlock()
	assert.Equal(t, hypervisor.StateRunning, e.state("rd"))
}
