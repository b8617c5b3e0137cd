package hypervisortest

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dockervisor/dockervisor/hypervisor"
)

func testHost(t *testing.T, e *env) {
	spec := e.spec("host")
	spec.VCPUs = 2
	e.spawn(t, spec)
	ctx := t.Context()

	h, err := e.d.HostResources(ctx)
	if e.caps.HostResources {
		require.NoError(t, err)
		assert.False(t, h.Time.IsZero(), "Time")
		assert.NotEmpty(t, h.Hostname)
		assert.NotEmpty(t, h.HypervisorType)
		assert.Positive(t, h.VCPUs)
		assert.GreaterOrEqual(t, h.VCPUsUsed, 2, "VCPUsUsed counts this instance")
		assert.Positive(t, h.MemoryMB)
		assert.GreaterOrEqual(t, h.MemoryClaimedMB, int64(64), "MemoryClaimedMB counts this instance")
		assert.LessOrEqual(t, h.MemoryUsedMB, h.MemoryMB)
		assert.GreaterOrEqual(t, h.Instances[stR.String()], 1, "running instances")

		nodes, err := e.d.AvailableNodes(ctx)
		require.NoError(t, err)
		require.NotEmpty(t, nodes)
		for _, n := range nodes {
			assert.NotEmpty(t, n)
		}
	} else {
		requireUnsupportedOr(t, false, err, hypervisor.ErrNotSupported, "", "HostResources")
	}

	s, err := e.d.InstanceStats(ctx, spec.ID)
	if !e.caps.InstanceStats {
		requireUnsupportedOr(t, false, err, hypervisor.ErrNotSupported, spec.ID, "InstanceStats")
		return
	}
	require.NoError(t, err)
	assert.Equal(t, spec.ID, s.ID)
	assert.False(t, s.Time.IsZero(), "Time")
	assert.Equal(t, uint64(64<<20), s.MemoryLimitBytes)
	assert.LessOrEqual(t, s.MemoryBytes, s.MemoryLimitBytes)
}
