package network_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dockervisor/dockervisor/network"
	"github.com/dockervisor/dockervisor/network/networktest"
)

func TestDispatcher(t *testing.T) {
	ctx := t.Context()
	ovs, br := networktest.NewRecorder(network.VIFTypeOVS), networktest.NewRecorder(network.VIFTypeBridge)
	var d network.Dispatcher
	d.Handle(network.VIFTypeOVS, ovs)
	d.Handle(network.VIFTypeBridge, br)
	assert.Equal(t, []network.VIFType{network.VIFTypeBridge, network.VIFTypeOVS}, d.Types())
	assert.Panics(t, func() { d.Handle(network.VIFTypeOVS, ovs) }, "duplicate registration")
	assert.Panics(t, func() { d.Handle("x", nil) })

	vo := networktest.TestVIF(network.VIFTypeOVS, "br-int", 1)
	vb := networktest.TestVIF(network.VIFTypeBridge, "br0", 2)
	require.NoError(t, d.Plug(ctx, "i", vo))
	require.NoError(t, d.Plug(ctx, "i", vb))
	assert.Contains(t, ovs.Plugged(), vo.ID)
	assert.NotContains(t, ovs.Plugged(), vb.ID)
	assert.Contains(t, br.Plugged(), vb.ID)

	ovs.AddNamespace("/ns/1")
	tg := network.Target{NetNS: "/ns/1", IfName: "eth0"}
	require.NoError(t, d.Attach(ctx, "i", vo, tg))
	assert.Equal(t, tg, ovs.Attached()[vo.ID])
	require.NoError(t, d.Detach(ctx, "i", vo, tg))
	require.NoError(t, d.Unplug(ctx, "i", vo))
	assert.Empty(t, ovs.Plugged())

	other := vo
	other.Type = "vhostuser"
	for _, err := range []error{
		d.Plug(ctx, "i", other), d.Attach(ctx, "i", other, tg), d.Detach(ctx, "i", other, tg), d.Unplug(ctx, "i", other),
	} {
		assert.ErrorIs(t, err, network.ErrUnsupportedVIFType)
	}
}

func TestDispatcherConformance(t *testing.T) {
	networktest.TestVIFDriver(t, func(t *testing.T) networktest.Harness {
		h := networktest.NewRecorderHarness(t)
		d := network.NewDispatcher()
		d.Handle(network.VIFTypeBridge, h.Driver)
		h.Driver = d
		return h
	})
}
