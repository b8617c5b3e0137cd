package hypervisor_test

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dockervisor/dockervisor/hypervisor"
)

var allStates = []hypervisor.State{
	hypervisor.StateUnknown, hypervisor.StateCreated, hypervisor.StateRunning, hypervisor.StatePaused,
	hypervisor.StateShutdown, hypervisor.StateCrashed, hypervisor.StateSoftDeleted,
}

func TestStateString(t *testing.T) {
	want := []string{"unknown", "created", "running", "paused", "shutdown", "crashed", "soft-deleted"}
	for i, s := range allStates {
		assert.Equal(t, want[i], s.String())
	}
	assert.Equal(t, "State(42)", hypervisor.State(42).String())
	assert.Equal(t, "State(-1)", hypervisor.State(-1).String())
}

func TestStateTextRoundTrip(t *testing.T) {
	for _, s := range allStates {
		b, err := s.MarshalText()
		require.NoError(t, err)
		var got hypervisor.State
		require.NoError(t, got.UnmarshalText(b))
		assert.Equal(t, s, got)
	}
	var s hypervisor.State
	assert.ErrorIs(t, s.UnmarshalText([]byte("Running")), hypervisor.ErrInvalidArgument)
	assert.ErrorIs(t, s.UnmarshalText([]byte("")), hypervisor.ErrInvalidArgument)
}

func TestStateJSON(t *testing.T) {
	inst := hypervisor.Instance{ID: "vm-1", State: hypervisor.StatePaused}
	b, err := json.Marshal(inst)
	require.NoError(t, err)
	assert.Contains(t, string(b), `"state":"paused"`)
	var got hypervisor.Instance
	require.NoError(t, json.Unmarshal(b, &got))
	assert.Equal(t, hypervisor.StatePaused, got.State)

	m := map[hypervisor.State]int{hypervisor.StateRunning: 2}
	b, err = json.Marshal(m)
	require.NoError(t, err)
	assert.JSONEq(t, `{"running":2}`, string(b))
}

func TestStateIsStopped(t *testing.T) {
	stopped := map[hypervisor.State]bool{
		hypervisor.StateCreated: true, hypervisor.StateShutdown: true,
		hypervisor.StateCrashed: true, hypervisor.StateSoftDeleted: true,
	}
	for _, s := range allStates {
		assert.Equal(t, stopped[s], s.IsStopped(), "%s", s)
	}
}
