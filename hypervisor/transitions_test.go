package hypervisor

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestStateTableRows(t *testing.T) {
	rows := StateTable()
	require.Len(t, rows, int(OpRebuild))
	for i, r := range rows {
		assert.Equal(t, Operation(i+1), r.Op)
		for _, s := range r.Valid {
			assert.NotContains(t, r.Noop, s, "%s: %s both valid and a no-op", r.Op, s)
		}
	}
	// The copies do not alias the table.
	r := TransitionOf(OpPowerOff)
	r.Valid[0] = StateUnknown
	assert.Equal(t, StateRunning, TransitionOf(OpPowerOff).Valid[0])
}

func TestOperationCheck(t *testing.T) {
	act, err := OpPowerOff.Check("x", StateRunning)
	assert.True(t, act)
	assert.NoError(t, err)

	act, err = OpPowerOff.Check("x", StateShutdown)
	assert.False(t, act)
	assert.NoError(t, err, "a no-op")

	_, err = OpRestore.Check("x", StateRunning)
	require.ErrorIs(t, err, ErrInvalidState)
	se, ok := errors.AsType[*StateError](err)
	require.True(t, ok)
	assert.Equal(t, "restore", se.Op)
	assert.Equal(t, []State{StateSoftDeleted}, se.Want)

	_, err = OpRebootSoft.Check("x", StatePaused)
	se, _ = errors.AsType[*StateError](err)
	require.NotNil(t, se)
	assert.Equal(t, "reboot", se.Op)
	assert.Equal(t, "unknown", Operation(0).String())

	_, err = OpExec.Check("x", StatePaused)
	se, _ = errors.AsType[*StateError](err)
	require.NotNil(t, se)
	assert.Equal(t, "exec", se.Op)
	assert.Equal(t, []State{StateRunning}, se.Want)
}
