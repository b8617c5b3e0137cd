package hypervisortest

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dockervisor/dockervisor/hypervisor"
)

func testSnapshot(t *testing.T, e *env) {
	spec := e.spec("snap")
	e.spawn(t, spec)
	id := spec.ID
	ctx := t.Context()
	before := e.info(t, id)
	meta, err := e.d.Snapshot(ctx, id, hypervisor.SnapshotRequest{
		Name:       "hypervisortest-" + e.run,
		Properties: map[string]string{"suite": "hypervisortest"},
	})
	if !e.caps.Snapshot {
		requireUnsupportedOr(t, false, err, hypervisor.ErrNotSupported, id, "Snapshot")
		return
	}
	require.NoError(t, err)
	assert.NotEmpty(t, meta.ID)
	assert.Equal(t, "hypervisortest-"+e.run, meta.Name)
	assert.Positive(t, meta.Size)
	assert.Equal(t, "hypervisortest", meta.Properties["suite"])
	after := e.info(t, id)
	assert.Equal(t, stR, after.State, "Snapshot does not change the state")
	assert.Equal(t, before.PID, after.PID)
}
