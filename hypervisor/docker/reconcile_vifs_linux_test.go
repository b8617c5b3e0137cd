package docker

import (
	"testing"

	"github.com/moby/moby/client"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dockervisor/dockervisor/hypervisor"
	"github.com/dockervisor/dockervisor/internal/testenv"
	"github.com/dockervisor/dockervisor/network"
)

// TestReconcileUnplugsVIFsOfVanishedInstance removes a networked
// instance's container behind the driver's back, as a crash or an
// operator would, and checks that Reconcile with the remove policy takes
// the host side of its VIFs away with its record.
func TestReconcileUnplugsVIFsOfVanishedInstance(t *testing.T) {
	t.Parallel()
	// OVS hybrid: its qbr bridge and qvb/qvo pair outlive the instance's
	// namespace, so only an unplug removes them.
	lab := newOVSLab(t, testenv.MustHaveOVS(t), true)
	e := newEnv(t, WithVIFDriver(lab.drv))
	ctx := t.Context()
	v := lab.vif(1, 2)
	spec := e.spec("gone")
	spec.VIFs = []network.VIF{v}
	inst := e.spawn(spec)
	dev, err := network.DeviceNames(v.ID)
	require.NoError(t, err)
	require.Contains(t, lab.hostLinks(t), dev.VethOVS)

	_, err = e.cli.ContainerRemove(ctx, inst.BackendID, client.ContainerRemoveOptions{Force: true})
	require.NoError(t, err)

	rep, err := e.drv.Reconcile(ctx, hypervisor.ReconcileOptions{Known: []string{"gone"}, Policy: hypervisor.ReconcileReportOnly})
	require.NoError(t, err)
	assert.Contains(t, rep.Orphaned, "gone")
	assert.Contains(t, lab.hostLinks(t), dev.VethOVS, "report only changes nothing")

	rep, err = e.drv.Reconcile(ctx, hypervisor.ReconcileOptions{Known: []string{"gone"}, Policy: hypervisor.ReconcileRemove})
	require.NoError(t, err)
	assert.Contains(t, rep.Removed, "gone")
	lab.requireNothingLeftOf(t, v)
}
