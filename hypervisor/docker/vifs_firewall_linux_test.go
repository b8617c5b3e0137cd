package docker

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dockervisor/dockervisor/internal/testenv"
	"github.com/dockervisor/dockervisor/network"
	"github.com/dockervisor/dockervisor/network/secgroup"
)

// A Driver with a security-group Firewall as its port observer: a port is
// filtered from its plug, an allowed port is reachable and a blocked one
// drops the connection, and Destroy takes the port's chains away.
func TestVIFsFirewall(t *testing.T) {
	t.Parallel()
	lab := newBridgeLab(t)
	fw, err := secgroup.New(secgroup.WithHostNetNS(lab.host))
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, fw.Teardown(context.Background())) })
	ctx := t.Context()
	tcp := func(port int) *int { return &port }
	require.NoError(t, fw.SetGroup(ctx, secgroup.Group{ID: "web", Rules: []secgroup.Rule{
		{Direction: secgroup.Ingress, EtherType: secgroup.IPv4, Protocol: "tcp", PortRangeMin: tcp(8080)},
		{Direction: secgroup.Ingress, EtherType: secgroup.IPv4, Protocol: "icmp"},
		{Direction: secgroup.Egress, EtherType: secgroup.IPv4},
		{Direction: secgroup.Egress, EtherType: secgroup.IPv6},
	}}))
	require.NoError(t, fw.SetGroup(ctx, secgroup.Group{ID: "client", Rules: []secgroup.Rule{
		{Direction: secgroup.Egress, EtherType: secgroup.IPv4},
		{Direction: secgroup.Egress, EtherType: secgroup.IPv6},
	}}))
	va, vb := lab.vif(1, 2), lab.vif(1, 3)
	groups := map[string]string{va.ID: "client", vb.ID: "web"}
	hook := secgroup.NewPortHook(fw, func(_ string, v network.VIF) ([]string, bool) {
		g, ok := groups[v.ID]
		return []string{g}, ok
	})
	e := newEnv(t, WithVIFDriver(lab.drv), WithPortObserver(hook))
	a, b := e.spec("fwa"), e.spec("fwb")
	a.VIFs, b.VIFs = []network.VIF{va}, []network.VIF{vb}
	e.spawn(a)
	e.spawn(b)
	assert.Len(t, fw.Ports(), 2, "both ports filtered from their plug")

	e.startHTTPD("fwb", 8080)
	e.startHTTPD("fwb", 8081)
	src := nsOf(e.pid("fwa"))
	out, err := testenv.PingEventually(t, src, ip4(vb), 10*time.Second)
	require.NoError(t, err, "allowed ping: %s", out)
	_, err = testenv.HTTPGet(t, src, fmt.Sprintf("http://%s:8080/bin/busybox", ip4(vb)))
	require.NoError(t, err, "allowed port")
	// The server listens on 8081 (reachable from inside b itself, once
	// the detached httpd is up)…
	require.Eventually(t, func() bool {
		c, err := testenv.DialTCP(nsOf(e.pid("fwb")), ip4(vb)+":8081", 2*time.Second)
		if err == nil {
			c.Close()
		}
		return err == nil
	}, 20*time.Second, 100*time.Millisecond, "blocked port listens")
	// …but a connection from a is dropped.
	c, err := testenv.DialTCP(src, ip4(vb)+":8081", time.Second)
	if err == nil {
		c.Close()
	}
	require.Error(t, err, "blocked port must drop the connection")
	// No ingress rule for a: b cannot ping it.
	_, err = testenv.Ping(t, nsOf(e.pid("fwb")), ip4(va), 1)
	require.Error(t, err, "ingress without a rule is dropped")

	rules := func() string {
		out, err := testenv.RunInNetns(t, ctx, lab.host, "nft", "list", "ruleset")
		require.NoError(t, err, "%s", out)
		return string(out)
	}
	require.Contains(t, rules(), "i-"+vb.ID)
	require.NoError(t, e.drv.Destroy(ctx, "fwb"))
	assert.NotContains(t, rules(), "i-"+vb.ID, "the port's chains go with the port")
	assert.Len(t, fw.Ports(), 1)
	require.NoError(t, e.drv.DetachInterface(ctx, "fwa", va))
	assert.Empty(t, fw.Ports(), "detach removes the filter")
}
