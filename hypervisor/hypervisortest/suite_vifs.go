package hypervisortest

import (
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dockervisor/dockervisor/hypervisor"
	"github.com/dockervisor/dockervisor/network"
)

// testVIFs checks the VIF contract: VIFs given at spawn, PlugVIFs,
// UnplugVIFs, AttachInterface and DetachInterface, their validation, and
// that every start of the instance (power-on, both reboots, restore) brings
// them back. What is plugged shows in Info and List (Instance.VIFs, in
// guest device order); what is attached inside a running instance shows in
// InstanceStats, whose interfaces carry the port ID of their VIF, so a
// backend that forgot to re-attach a VIF after a start fails here.
func testVIFs(t *testing.T, e *env) {
	ctx := t.Context()
	if !e.caps.VIFs {
		spec := e.spec("vifs")
		e.spawn(t, spec)
		err := e.d.PlugVIFs(ctx, spec.ID, []network.VIF{{ID: "hvt-port", Type: network.VIFTypeOVS}})
		requireUnsupportedOr(t, false, err, hypervisor.ErrNotSupported, spec.ID, "PlugVIFs")
		return
	}
	if e.h.VIF == nil {
		spec := e.spec("vifs")
		e.spawn(t, spec)
		bad := network.VIF{Type: network.VIFTypeOVS} // no ID
		requireClass(t, e.d.PlugVIFs(ctx, spec.ID, []network.VIF{bad}), hypervisor.ErrInvalidArgument, spec.ID, "PlugVIFs of an invalid VIF")
		t.Skip("Harness.VIF is nil")
	}
	v0, v1, v2, v3 := e.h.VIF(t, 0), e.h.VIF(t, 1), e.h.VIF(t, 2), e.h.VIF(t, 3)

	// Malformed VIFs in a spec, and two VIFs with one MAC, are refused
	// before anything exists.
	badSpec := e.spec("vifs-bad")
	sameMAC := v1
	sameMAC.Address = v0.Address
	badSpec.VIFs = []network.VIF{v0, sameMAC}
	e.cleanupDestroy(t, badSpec.ID)
	_, err := e.d.Spawn(ctx, badSpec)
	requireClass(t, err, hypervisor.ErrInvalidArgument, badSpec.ID, "Spawn with two VIFs of one MAC")
	_, err = e.d.Info(ctx, badSpec.ID)
	requireClass(t, err, hypervisor.ErrNotFound, badSpec.ID, "Info after a refused Spawn")

	spec := e.spec("vifs")
	spec.VIFs = []network.VIF{v0}
	e.spawn(t, spec)
	id := spec.ID
	e.requireVIFs(t, id, v0)

	bad := network.VIF{Type: network.VIFTypeOVS} // no ID
	requireClass(t, e.d.PlugVIFs(ctx, id, []network.VIF{bad}), hypervisor.ErrInvalidArgument, id, "PlugVIFs of an invalid VIF")
	requireClass(t, e.d.PlugVIFs(ctx, id, []network.VIF{sameMAC}), hypervisor.ErrInvalidArgument, id, "PlugVIFs of a VIF with the MAC of a plugged one")
	e.requireVIFs(t, id, v0)

	require.NoError(t, e.d.PlugVIFs(ctx, id, []network.VIF{v0, v1}))
	require.NoError(t, e.d.PlugVIFs(ctx, id, []network.VIF{v0}), "PlugVIFs again")
	e.requireVIFs(t, id, v0, v1)
	require.NoError(t, e.d.UnplugVIFs(ctx, id, []network.VIF{v1}))
	require.NoError(t, e.d.UnplugVIFs(ctx, id, []network.VIF{v1}), "UnplugVIFs again")
	require.NoError(t, e.d.UnplugVIFs(ctx, id, []network.VIF{v2}), "UnplugVIFs of a VIF never plugged")
	e.requireVIFs(t, id, v0)
	require.NoError(t, e.d.PlugVIFs(ctx, id, []network.VIF{v1}))

	// Every transition that starts the process brings the VIFs back.
	starts := []struct {
		name   string
		before func() error
		start  func() error
	}{
		{"Reboot hard", nil, func() error { return e.d.Reboot(ctx, id, hypervisor.RebootOptions{Hard: true}) }},
		{"Reboot soft", nil, func() error { return e.d.Reboot(ctx, id, hypervisor.RebootOptions{Timeout: stopTimeout}) }},
		{"PowerOn", func() error { return e.d.PowerOff(ctx, id, hypervisor.StopOptions{Timeout: -1}) }, func() error { return e.d.PowerOn(ctx, id) }},
		{"Restore", func() error { return e.d.SoftDelete(ctx, id) }, func() error { return e.d.Restore(ctx, id) }},
	}
	for _, s := range starts {
		if s.before != nil {
			require.NoError(t, s.before(), "before %s", s.name)
		}
		require.NoError(t, s.start(), s.name)
		assert.Equal(t, stR, e.info(t, id).State, "after %s", s.name)
		e.requireVIFs(t, id, v0, v1)
	}

	// A VIF plugged while the instance is shut down is attached at its
	// next start.
	require.NoError(t, e.d.PowerOff(ctx, id, hypervisor.StopOptions{Timeout: -1}))
	require.NoError(t, e.d.PlugVIFs(ctx, id, []network.VIF{v3}))
	e.requireVIFs(t, id, v0, v1, v3)
	require.NoError(t, e.d.PowerOn(ctx, id))
	e.requireVIFs(t, id, v0, v1, v3)
	require.NoError(t, e.d.UnplugVIFs(ctx, id, []network.VIF{v1, v3}))
	e.requireVIFs(t, id, v0)

	if !e.caps.HotplugVIF {
		requireUnsupportedOr(t, false, e.d.AttachInterface(ctx, id, v2), hypervisor.ErrNotSupported, id, "AttachInterface")
		return
	}
	requireClass(t, e.d.AttachInterface(ctx, id, bad), hypervisor.ErrInvalidArgument, id, "AttachInterface of an invalid VIF")
	require.NoError(t, e.d.AttachInterface(ctx, id, v2))
	e.requireVIFs(t, id, v0, v2)
	require.NoError(t, e.d.DetachInterface(ctx, id, v2))
	require.NoError(t, e.d.DetachInterface(ctx, id, v2), "DetachInterface again")
	e.requireVIFs(t, id, v0)
	require.NoError(t, e.d.PowerOff(ctx, id, hypervisor.StopOptions{Timeout: -1}))
	requireStateError(t, e.d.AttachInterface(ctx, id, v2), id, stS, "AttachInterface to a shut-down instance")
	require.NoError(t, e.d.UnplugVIFs(ctx, id, []network.VIF{v0}), "UnplugVIFs of a shut-down instance")
	e.requireVIFs(t, id)
}

// requireVIFs requires the instance id to have exactly the VIFs want
// plugged, in this order (Info and List), and, when it runs, attached
// (InstanceStats has an interface with each VIF's port ID, and none with
// another port ID).
func (e *env) requireVIFs(t *testing.T, id string, want ...network.VIF) {
	t.Helper()
	wantIDs := make([]string, 0, len(want))
	for _, v := range want {
		wantIDs = append(wantIDs, v.ID)
	}
	info := e.info(t, id)
	assert.Equal(t, wantIDs, vifIDs(info.VIFs), "Info(%q).VIFs", id)
	list, err := e.d.List(t.Context(), hypervisor.ListOptions{})
	require.NoError(t, err, "List")
	i := slices.IndexFunc(list, func(inst hypervisor.Instance) bool { return inst.ID == id })
	require.GreaterOrEqual(t, i, 0, "List has %q", id)
	assert.Equal(t, wantIDs, vifIDs(list[i].VIFs), "List: VIFs of %q", id)
	if info.State != stR {
		return
	}
	s, err := e.d.InstanceStats(t.Context(), id)
	require.NoError(t, err, "InstanceStats(%q)", id)
	var ports []string
	for _, ifc := range s.Interfaces {
		if ifc.PortID != "" {
			ports = append(ports, ifc.PortID)
		}
	}
	assert.ElementsMatch(t, wantIDs, ports, "InstanceStats(%q): interfaces with a port ID", id)
}

func vifIDs(vifs []network.VIF) []string {
	ids := make([]string, 0, len(vifs))
	for _, v := range vifs {
		ids = append(ids, v.ID)
	}
	return ids
}
