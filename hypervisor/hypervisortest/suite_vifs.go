package hypervisortest

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dockervisor/dockervisor/hypervisor"
	"github.com/dockervisor/dockervisor/network"
)

func testVIFs(t *testing.T, e *env) {
	spec := e.spec("vifs")
	e.spawn(t, spec)
	id := spec.ID
	ctx := t.Context()
	if !e.caps.VIFs {
		err := e.d.PlugVIFs(ctx, id, []network.VIF{{ID: "hvt-port", Type: network.VIFTypeOVS}})
		requireUnsupportedOr(t, false, err, hypervisor.ErrNotSupported, id, "PlugVIFs")
		return
	}
	bad := network.VIF{Type: network.VIFTypeOVS} // no ID
	requireClass(t, e.d.PlugVIFs(ctx, id, []network.VIF{bad}), hypervisor.ErrInvalidArgument, id, "PlugVIFs of an invalid VIF")
	if e.h.VIF == nil {
		t.Skip("Harness.VIF is nil")
	}
	v0, v1, v2 := e.h.VIF(t, 0), e.h.VIF(t, 1), e.h.VIF(t, 2)
	require.NoError(t, e.d.PlugVIFs(ctx, id, []network.VIF{v0, v1}))
	require.NoError(t, e.d.PlugVIFs(ctx, id, []network.VIF{v0}), "PlugVIFs again")
	require.NoError(t, e.d.UnplugVIFs(ctx, id, []network.VIF{v1}))
	require.NoError(t, e.d.UnplugVIFs(ctx, id, []network.VIF{v1}), "UnplugVIFs again")
	require.NoError(t, e.d.UnplugVIFs(ctx, id, []network.VIF{v2}), "UnplugVIFs of a VIF never plugged")

	// The instance keeps running through all this, and restarts with its VIFs.
	require.NoError(t, e.d.Reboot(ctx, id, hypervisor.RebootOptions{Hard: true}))
	assert.Equal(t, stR, e.info(t, id).State)

	if !e.caps.HotplugVIF {
		requireUnsupportedOr(t, false, e.d.AttachInterface(ctx, id, v2), hypervisor.ErrNotSupported, id, "AttachInterface")
		return
	}
	require.NoError(t, e.d.AttachInterface(ctx, id, v2))
	require.NoError(t, e.d.DetachInterface(ctx, id, v2))
	require.NoError(t, e.d.DetachInterface(ctx, id, v2), "DetachInterface again")
	require.NoError(t, e.d.PowerOff(ctx, id, hypervisor.StopOptions{Timeout: -1}))
	requireStateError(t, e.d.AttachInterface(ctx, id, v2), id, stS, "AttachInterface to a shut-down instance")
	require.NoError(t, e.d.UnplugVIFs(ctx, id, []network.VIF{v0}), "UnplugVIFs of a shut-down instance")
}
