package hypervisor_test

import (
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dockervisor/dockervisor/hypervisor"
)

func TestErrNotSupportedWrapsErrUnsupported(t *testing.T) {
	assert.ErrorIs(t, hypervisor.ErrNotSupported, errors.ErrUnsupported)
	err := &hypervisor.OpError{Op: "snapshot", ID: "vm-1", Err: fmt.Errorf("%w: no store", hypervisor.ErrNotSupported)}
	assert.ErrorIs(t, err, errors.ErrUnsupported)
}

func TestOpError(t *testing.T) {
	cause := fmt.Errorf("%w: %w", hypervisor.ErrNotFound, io.EOF)
	err := error(&hypervisor.OpError{Op: "power-on", ID: "vm-1", Err: cause})
	assert.Equal(t, "hypervisor: power-on vm-1: not found: EOF", err.Error())
	assert.ErrorIs(t, err, hypervisor.ErrNotFound)
	assert.ErrorIs(t, err, io.EOF, "the backend's error stays in the chain")
	assert.NotErrorIs(t, err, hypervisor.ErrInvalidState)
	oe, ok := errors.AsType[*hypervisor.OpError](fmt.Errorf("agent: %w", err))
	require.True(t, ok)
	assert.Equal(t, "vm-1", oe.ID)

	host := &hypervisor.OpError{Op: "host-resources", Err: hypervisor.ErrUnavailable}
	assert.Equal(t, "hypervisor: host-resources: unavailable", host.Error())
	assert.Equal(t, "hypervisor: list: <nil>", (&hypervisor.OpError{Op: "list"}).Error())
}

func TestStateError(t *testing.T) {
	err := hypervisor.CheckState("pause", "vm-1", hypervisor.StateShutdown, hypervisor.StateRunning)
	require.Error(t, err)
	assert.ErrorIs(t, err, hypervisor.ErrInvalidState)
	assert.NotErrorIs(t, err, hypervisor.ErrNotFound)
	se, ok := errors.AsType[*hypervisor.StateError](err)
	require.True(t, ok)
	assert.Equal(t, &hypervisor.StateError{Op: "pause", ID: "vm-1", Current: hypervisor.StateShutdown, Want: []hypervisor.State{hypervisor.StateRunning}}, se)
	assert.Equal(t, "hypervisor: cannot pause instance vm-1 in state shutdown (valid in: running)", err.Error())

	wrapped := &hypervisor.OpError{Op: "pause", ID: "vm-1", Err: err}
	assert.ErrorIs(t, wrapped, hypervisor.ErrInvalidState)
	assert.Equal(t, "hypervisor: pause vm-1: cannot pause instance vm-1 in state shutdown (valid in: running)", wrapped.Error())

	multi := hypervisor.CheckState("reboot", "vm-2", hypervisor.StateSoftDeleted, hypervisor.StateRunning, hypervisor.StatePaused)
	assert.Equal(t, "hypervisor: cannot reboot instance vm-2 in state soft-deleted (valid in: running, paused)", multi.Error())

	assert.NoError(t, hypervisor.CheckState("pause", "vm-1", hypervisor.StateRunning, hypervisor.StateRunning))
	assert.NoError(t, hypervisor.CheckState("reboot", "vm-1", hypervisor.StatePaused, hypervisor.StateRunning, hypervisor.StatePaused))
	assert.Error(t, hypervisor.CheckState("restore", "vm-1", hypervisor.StateRunning), "no valid state at all")
}
