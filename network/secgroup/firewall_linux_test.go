package secgroup_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dockervisor/dockervisor/internal/testenv"
	"github.com/dockervisor/dockervisor/network/secgroup"
)

func webGroup(id string, port int) secgroup.Group {
	return secgroup.Group{ID: id, Rules: []secgroup.Rule{
		{Direction: secgroup.Ingress, EtherType: secgroup.IPv4, Protocol: "tcp", PortRangeMin: new(port)},
		{Direction: secgroup.Ingress, EtherType: secgroup.IPv4, Protocol: "icmp", PortRangeMin: new(8)},
		{Direction: secgroup.Ingress, EtherType: secgroup.IPv6, Protocol: "tcp", PortRangeMin: new(port)},
		{Direction: secgroup.Ingress, EtherType: secgroup.IPv6, Protocol: "icmpv6", PortRangeMin: new(128)},
		{Direction: secgroup.Egress, EtherType: secgroup.IPv4},
		{Direction: secgroup.Egress, EtherType: secgroup.IPv6},
	}}
}

var egressOnly = secgroup.Group{ID: "client", Rules: []secgroup.Rule{
	{Direction: secgroup.Egress, EtherType: secgroup.IPv4},
	{Direction: secgroup.Egress, EtherType: secgroup.IPv6},
}}

// TestAllowAndDrop: a group admits TCP 8080 and ping, IPv4 and IPv6, and
// drops TCP 8081; an instance without ingress rules cannot be pinged.
func TestAllowAndDrop(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	ctx := t.Context()
	require.NoError(t, l.fw.SetGroup(ctx, webGroup("web", 8080)))
	require.NoError(t, l.fw.SetGroup(ctx, egressOnly))
	srv := l.plug(t, 2, "web")
	cli := l.plug(t, 3, "client")
	testenv.StartEchoServer(t, srv.ns.Path, "[::]:8080")
	testenv.StartEchoServer(t, srv.ns.Path, "[::]:8081")
	for _, fam := range []struct{ name, srv, cli string }{{"IPv4", srv.v4, cli.v4}, {"IPv6", srv.v6, cli.v6}} {
		t.Run(fam.name, func(t *testing.T) {
			assert.True(t, reach(t, cli, fam.srv, 8080), "allowed port")
			assert.True(t, ping(t, cli, fam.srv), "allowed ping")
			assert.False(t, reach(t, cli, fam.srv, 8081), "port without a rule is dropped")
			assert.False(t, ping(t, srv, fam.cli), "ingress without a rule is dropped")
		})
	}
}

// TestLiveUpdate changes a group's rules while a connection it allows is
// open: the connection keeps working, the new rules hold at once, and the
// change is exactly one kernel transaction.
func TestLiveUpdate(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	ctx := t.Context()
	require.NoError(t, l.fw.SetGroup(ctx, webGroup("web", 8080)))
	require.NoError(t, l.fw.SetGroup(ctx, egressOnly))
	srv := l.plug(t, 2, "web")
	cli := l.plug(t, 3, "client")
	testenv.StartEchoServer(t, srv.ns.Path, "[::]:8080")
	testenv.StartEchoServer(t, srv.ns.Path, "[::]:9090")

	open, err := testenv.DialTCP(cli.ns.Path, hostport(srv.v4, 8080), 3*time.Second)
	require.NoError(t, err)
	defer open.Close()
	require.NoError(t, testenv.Echo(open, "before", 3*time.Second))
	require.False(t, reach(t, cli, srv.v4, 9090))

	// Allow 9090 as well: the open connection must not notice.
	g := webGroup("web", 8080)
	g.Rules = append(g.Rules, secgroup.Rule{Direction: secgroup.Ingress, EtherType: secgroup.IPv4, Protocol: "tcp", PortRangeMin: new(9000), PortRangeMax: new(9100)})
	gen := genID(t, l.host.Path)
	require.NoError(t, l.fw.SetGroup(ctx, g))
	assert.Equal(t, gen+1, genID(t, l.host.Path), "one transaction")
	assert.NoError(t, testenv.Echo(open, "during", 3*time.Second), "established connection survives the update")
	assert.True(t, reach(t, cli, srv.v4, 9090), "new rule in force")

	// The same group again changes nothing at all.
	gen = genID(t, l.host.Path)
	before := ruleset(t, l.host.Path)
	require.NoError(t, l.fw.SetGroup(ctx, g))
	require.NoError(t, l.fw.ApplyPort(ctx, srv.port))
	assert.Equal(t, gen, genID(t, l.host.Path), "re-apply is no transaction")
	assert.Equal(t, before, ruleset(t, l.host.Path))

	// Remove the 8080 rule: new connections to 8080 are dropped, the open
	// one (established before the change) keeps flowing.
	g.Rules = g.Rules[1:]
	require.NoError(t, l.fw.SetGroup(ctx, g))
	assert.False(t, reach(t, cli, srv.v4, 8080), "removed rule")
	assert.NoError(t, testenv.Echo(open, "after", 3*time.Second))
}
