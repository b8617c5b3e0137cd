package secgroup_test

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dockervisor/dockervisor/internal/testenv"
	"github.com/dockervisor/dockervisor/network"
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
			assert.True(t, reachEventually(t, cli, fam.srv, 8080), "allowed port")
			assert.True(t, pingEventually(t, cli, fam.srv), "allowed ping")
			assert.False(t, reach(t, cli, fam.srv, 8081), "port without a rule is dropped")
			assert.False(t, ping(t, srv, fam.cli), "ingress without a rule is dropped")
		})
	}
}

// TestOVSHybridPort: the same group on ports hybrid-plugged on Open
// vSwitch (on the kernel datapath where the kernel has it): the Firewall
// filters on each port's own Linux bridge (qbr), IPv4 and IPv6.
func TestOVSHybridPort(t *testing.T) {
	t.Parallel()
	l := newOVSLab(t)
	ctx := t.Context()
	require.NoError(t, l.fw.SetGroup(ctx, webGroup("web", 8080)))
	require.NoError(t, l.fw.SetGroup(ctx, egressOnly))
	srv := l.plug(t, 2, "web")
	cli := l.plug(t, 3, "client")
	testenv.StartEchoServer(t, srv.ns.Path, "[::]:8080")
	testenv.StartEchoServer(t, srv.ns.Path, "[::]:8081")
	for _, fam := range []struct{ name, srv, cli string }{{"IPv4", srv.v4, cli.v4}, {"IPv6", srv.v6, cli.v6}} {
		t.Run(fam.name, func(t *testing.T) {
			assert.True(t, reachEventually(t, cli, fam.srv, 8080), "allowed port")
			assert.True(t, pingEventually(t, cli, fam.srv), "allowed ping")
			assert.False(t, reach(t, cli, fam.srv, 8081), "port without a rule is dropped")
			assert.False(t, ping(t, srv, fam.cli), "ingress without a rule is dropped")
		})
	}
	names, err := network.DeviceNames(srv.vif.ID)
	require.NoError(t, err)
	assert.Contains(t, ruleset(t, l.host.Path), names.Tap, "the rules match the port's tap on its qbr")
}

// TestLiveUpdate changes a group's rules while a connection it allows is
// open: the connection keeps working, the new rules hold at once, and the
// change is exactly one kernel transaction.
func TestLiveUpdate(t *testing.T) {
	t.Parallel()
	l := newLab(t, secgroup.WithCleanupDelay(-1))
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
	assert.True(t, reachEventually(t, cli, srv.v4, 9090), "new rule in force")
	// The port switched to new chains; the old ones are unreachable until
	// Settle deletes them, in one more transaction.
	rs := ruleset(t, l.host.Path)
	assert.Contains(t, rs, "chain i1-"+srv.port.ID+" {")
	assert.Contains(t, rs, "chain i-"+srv.port.ID+" {")
	require.NoError(t, l.fw.Settle(ctx))
	assert.Equal(t, gen+2, genID(t, l.host.Path), "one cleanup transaction")
	rs = ruleset(t, l.host.Path)
	assert.NotContains(t, rs, "i-"+srv.port.ID)
	assert.NotContains(t, rs, "o-"+srv.port.ID)
	assert.Contains(t, rs, "goto i1-"+srv.port.ID+"\n")
	assert.NoError(t, testenv.Echo(open, "settled", 3*time.Second), "established connection survives the cleanup")
	assert.True(t, reachEventually(t, cli, srv.v4, 9090), "new rule still in force")
	gen = genID(t, l.host.Path)
	require.NoError(t, l.fw.Settle(ctx))
	assert.Equal(t, gen, genID(t, l.host.Path), "nothing to settle is no transaction")

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

	// Egress chains return what they admit, so that the receiving port
	// decides: a return from the new chain must not fall into an old one
	// still in the kernel (unreachable until Settle). Take IPv4 egress away
	// from the client, then give it back.
	require.NoError(t, l.fw.SetGroup(ctx, secgroup.Group{ID: "client", Rules: egressOnly.Rules[1:]}))
	assert.False(t, reach(t, cli, srv.v4, 9090), "IPv4 egress taken away")
	require.NoError(t, l.fw.SetGroup(ctx, egressOnly))
	require.Contains(t, ruleset(t, l.host.Path), "chain o1-"+cli.port.ID+" {", "the old chains are still there")
	assert.True(t, reachEventually(t, cli, srv.v4, 9090), "IPv4 egress given back, old chains unreachable")
	require.NoError(t, l.fw.Settle(ctx))
	assert.True(t, reachEventually(t, cli, srv.v4, 9090))
}

// TestBackgroundCleanup: by default the Firewall deletes the chains an
// update left unreachable by itself, and then the kernel lists what a
// fresh build of the same state lists, up to the chains' versions.
func TestBackgroundCleanup(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	ctx := t.Context()
	require.NoError(t, l.fw.SetGroup(ctx, webGroup("web", 8080)))
	require.NoError(t, l.fw.SetGroup(ctx, egressOnly))
	srv := l.plug(t, 2, "web")
	cli := l.plug(t, 3, "client")
	testenv.StartEchoServer(t, srv.ns.Path, "[::]:9090")
	for i, port := range []int{9090, 8080, 9090} {
		require.NoError(t, l.fw.SetGroup(ctx, webGroup("web", port)))
		stale := fmt.Sprintf("o%d-%s", i, srv.port.ID)
		if i == 0 {
			stale = "o-" + srv.port.ID
		}
		require.Eventually(t, func() bool { return !strings.Contains(ruleset(t, l.host.Path), stale) },
			10*time.Second, 20*time.Millisecond, "stale chain %s deleted", stale)
	}
	assert.True(t, reachEventually(t, cli, srv.v4, 9090), "last rules in force")
	assert.False(t, reach(t, cli, srv.v4, 8080))
	settled := chainsSorted(versionRE.ReplaceAllString(ruleset(t, l.host.Path), "$1-"))

	// A new Firewall's Sync of the same state is a fresh build.
	fresh, err := secgroup.New(secgroup.WithHostNetNS(l.host.Path))
	require.NoError(t, err)
	require.NoError(t, fresh.Sync(ctx, l.fw.Groups(), l.fw.Ports()))
	assert.Equal(t, chainsSorted(ruleset(t, l.host.Path)), settled)
	assert.True(t, reachEventually(t, cli, srv.v4, 9090))

	// Close does the pending cleanup at once and arms no more.
	slow, err := secgroup.New(secgroup.WithHostNetNS(l.host.Path), secgroup.WithCleanupDelay(time.Hour))
	require.NoError(t, err)
	require.NoError(t, slow.Sync(ctx, l.fw.Groups(), l.fw.Ports()))
	require.NoError(t, slow.SetGroup(ctx, webGroup("web", 8080)))
	require.Contains(t, ruleset(t, l.host.Path), "o-"+srv.port.ID, "cleanup pending")
	require.NoError(t, slow.Close())
	assert.NotContains(t, ruleset(t, l.host.Path), "o-"+srv.port.ID, "Close cleaned up")
	require.NoError(t, slow.Close(), "idempotent")
	assert.False(t, reach(t, cli, srv.v4, 9090), "the new rules (8080 only) in force")
}

var (
	// versionRE matches the version of a port chain's name.
	versionRE = regexp.MustCompile(`\b([io])[0-9]+-`)
	chainRE   = regexp.MustCompile(`(?s)\tchain [^\n]* \{\n.*?\n\t\}\n`)
)

// chainsSorted is the ruleset rs with the chains of each table sorted (a
// fresh build creates port chains by port ID, a step-by-step one in the
// order of the steps), each chain's rules in their order.
func chainsSorted(rs string) string {
	var out strings.Builder
	for _, table := range strings.SplitAfter(rs, "\n}\n") {
		chains := chainRE.FindAllString(table, -1)
		slices.Sort(chains)
		out.WriteString(chainRE.ReplaceAllString(table, ""))
		out.WriteString(strings.Join(chains, ""))
	}
	return out.String()
}

// TestRemoteGroup: a rule admitting members of a group admits a member and
// drops a non-member, and follows membership changes.
func TestRemoteGroup(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	ctx := t.Context()
	require.NoError(t, l.fw.SetGroup(ctx, egressOnly))
	require.NoError(t, l.fw.SetGroup(ctx, secgroup.Group{ID: "db", Rules: []secgroup.Rule{
		{Direction: secgroup.Ingress, EtherType: secgroup.IPv4, Protocol: "tcp", PortRangeMin: new(5432), RemoteGroupID: "client"},
		{Direction: secgroup.Ingress, EtherType: secgroup.IPv6, Protocol: "tcp", PortRangeMin: new(5432), RemoteGroupID: "client"},
	}}))
	db := l.plug(t, 2, "db")
	member := l.plug(t, 3, "client")
	other := l.plug(t, 4)
	testenv.StartEchoServer(t, db.ns.Path, "[::]:5432")
	// other has no group: give it egress through a group of its own that
	// is not the remote group.
	require.NoError(t, l.fw.SetGroup(ctx, secgroup.Group{ID: "other", Rules: egressOnly.Rules}))
	l.setGroups(t, other, "other")

	assert.True(t, reachEventually(t, member, db.v4, 5432), "member")
	assert.True(t, reachEventually(t, member, db.v6, 5432), "member, IPv6")
	assert.False(t, reach(t, other, db.v4, 5432), "non-member")

	// Membership changes: other joins, member leaves.
	l.setGroups(t, other, "other", "client")
	l.setGroups(t, member, "other")
	assert.True(t, reachEventually(t, other, db.v4, 5432), "new member")
	assert.True(t, reachEventually(t, other, db.v6, 5432), "new member, IPv6")
	assert.False(t, reach(t, member, db.v4, 5432), "former member")
	assert.Equal(t, []string{"other"}, l.fw.Ports()[portIndex(l.fw.Ports(), member.port.ID)].Groups)
}

func portIndex(ps []secgroup.Port, id string) int {
	for i, p := range ps {
		if p.ID == id {
			return i
		}
	}
	return -1
}

// TestAntiSpoofing: an instance that sends from an IP or a MAC it does not
// own is dropped; with its own it gets through.
func TestAntiSpoofing(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	ctx := t.Context()
	require.NoError(t, l.fw.SetGroup(ctx, webGroup("web", 8080)))
	srv := l.plug(t, 2, "web")
	bad := l.plug(t, 3, "web")
	run := func(args ...string) {
		t.Helper()
		out, err := testenv.RunInNetns(t, ctx, bad.ns.Path, args...)
		require.NoError(t, err, "%v: %s", args, out)
	}
	require.True(t, pingEventually(t, bad, srv.v4), "own addresses")
	require.True(t, pingEventually(t, bad, srv.v6), "own addresses, IPv6")

	// A second IPv4 address that is not the port's, used as the source.
	run("ip", "addr", "add", "10.77.0.99/24", "dev", "eth0")
	out, err := testenv.RunInNetns(t, ctx, bad.ns.Path, "busybox", "ping", "-c", "1", "-W", "2", "-I", "10.77.0.99", srv.v4)
	assert.Error(t, err, "spoofed IPv4 source gets through: %s", out)
	run("ip", "addr", "add", "fd00:77::99/64", "dev", "eth0", "nodad")
	out, err = testenv.RunInNetns(t, ctx, bad.ns.Path, "busybox", "ping", "-c", "1", "-W", "2", "-I", "fd00:77::99", srv.v6)
	assert.Error(t, err, "spoofed IPv6 source gets through: %s", out)
	run("ip", "addr", "del", "10.77.0.99/24", "dev", "eth0")
	require.True(t, pingEventually(t, bad, srv.v4), "own address again")

	// Another MAC: nothing gets through, not even ARP.
	run("ip", "link", "set", "eth0", "address", "fa:16:3e:00:00:99")
	run("ip", "neigh", "flush", "all")
	assert.False(t, ping(t, bad, srv.v4), "spoofed MAC gets through")
}

// TestResyncAfterRestart: a new Firewall (an agent restarted) syncs a
// state with one port fewer and changed rules: the kernel holds exactly
// what a fresh build of that state holds, and the gone port's chains are
// removed.
func TestResyncAfterRestart(t *testing.T) {
	t.Parallel()
	l := newLab(t, secgroup.WithCleanupDelay(-1))
	ctx := t.Context()
	require.NoError(t, l.fw.SetGroup(ctx, webGroup("web", 8080)))
	require.NoError(t, l.fw.SetGroup(ctx, egressOnly))
	srv := l.plug(t, 2, "web")
	gone := l.plug(t, 3, "client")
	testenv.StartEchoServer(t, srv.ns.Path, "[::]:8080")
	testenv.StartEchoServer(t, srv.ns.Path, "[::]:8081")
	cli := l.plug(t, 4, "client")
	open, err := testenv.DialTCP(cli.ns.Path, hostport(srv.v4, 8080), 3*time.Second)
	require.NoError(t, err)
	defer open.Close()

	// An update leaves unreachable chains behind (no cleanup in this lab):
	// the restart must remove them too.
	require.NoError(t, l.fw.SetGroup(ctx, webGroup("web", 8082)))
	require.Contains(t, ruleset(t, l.host.Path), "chain i-"+srv.port.ID+" {")
	require.Contains(t, ruleset(t, l.host.Path), "chain i1-"+srv.port.ID+" {")

	restarted, err := secgroup.New(secgroup.WithHostNetNS(l.host.Path))
	require.NoError(t, err)
	groups := []secgroup.Group{webGroup("web", 8081), egressOnly}
	ports := []secgroup.Port{srv.port, cli.port}
	require.NoError(t, restarted.Sync(ctx, groups, ports))
	require.NoError(t, l.fw.Sync(ctx, groups, ports)) // the lab's Firewall tears down at the end
	got := ruleset(t, l.host.Path)
	assert.NotContains(t, got, gone.port.ID)
	assert.NotContains(t, got, "i1-", "versioned chains of before the restart")
	assert.NoError(t, testenv.Echo(open, "still", 3*time.Second), "established connection survives the resync")
	assert.True(t, reachEventually(t, cli, srv.v4, 8081))
	assert.False(t, reach(t, cli, srv.v4, 8080))

	// The same state built step by step in a fresh namespace lists the same.
	l2 := newLab(t)
	l2.bridge = l.bridge
	require.NoError(t, l2.drv.Plug(ctx, "inst", srv.vif))
	for _, g := range groups {
		require.NoError(t, l2.fw.SetGroup(ctx, g))
	}
	// Chains list in creation order; a build creates them by port ID.
	slices.SortFunc(ports, func(a, b secgroup.Port) int { return strings.Compare(a.ID, b.ID) })
	for _, p := range ports {
		require.NoError(t, l2.fw.ApplyPort(ctx, p))
	}
	assert.Equal(t, ruleset(t, l2.host.Path), got)
}

// TestCleanup: removing every port leaves no table, chain, rule or set in
// the kernel's listing; a port whose bridge does not exist is refused and
// leaves nothing.
func TestCleanup(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	ctx := t.Context()
	require.NoError(t, l.fw.SetGroup(ctx, webGroup("web", 8080)))
	a := l.plug(t, 2, "web")
	b := l.plug(t, 3, "web")
	require.Contains(t, ruleset(t, l.host.Path), secgroup.TableName)
	require.NoError(t, l.fw.RemovePort(ctx, a.port.ID))
	require.NoError(t, l.fw.RemovePort(ctx, a.port.ID), "remove twice")
	assert.NotContains(t, ruleset(t, l.host.Path), a.port.ID)
	require.NoError(t, l.drv.Unplug(ctx, "inst", a.vif))
	require.NoError(t, l.drv.Unplug(ctx, "inst", b.vif))
	require.NoError(t, l.fw.RemovePort(ctx, b.port.ID))
	noneOfOurs(t, l.host.Path)

	// Not plugged: the bridge is gone.
	err := l.fw.ApplyPort(ctx, b.port)
	assert.ErrorIs(t, err, secgroup.ErrPortNotPlugged)
	noneOfOurs(t, l.host.Path)
	assert.Empty(t, l.fw.Ports())
	require.NoError(t, l.fw.DeleteGroup(ctx, "web"))
	require.NoError(t, l.fw.DeleteGroup(ctx, "web"), "delete twice")
	noneOfOurs(t, l.host.Path)
}

// TestBadInputChangesNothing: every refused change leaves the kernel's
// listing as it was.
func TestBadInputChangesNothing(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	ctx := t.Context()
	require.NoError(t, l.fw.SetGroup(ctx, webGroup("web", 8080)))
	p := l.plug(t, 2, "web")
	before := ruleset(t, l.host.Path)
	gen := genID(t, l.host.Path)

	bad := webGroup("web", 8080)
	bad.Rules = append(bad.Rules, secgroup.Rule{Direction: secgroup.Ingress, EtherType: secgroup.IPv4, Protocol: "tcp", PortRangeMin: new(70000)})
	assert.ErrorIs(t, l.fw.SetGroup(ctx, bad), secgroup.ErrInvalidRule)
	bad.Rules[len(bad.Rules)-1] = secgroup.Rule{Direction: secgroup.Ingress, EtherType: secgroup.IPv4, RemoteGroupID: "nope"}
	assert.ErrorIs(t, l.fw.SetGroup(ctx, bad), secgroup.ErrUnknownGroup)
	q := p.port
	q.Groups = []string{"nope"}
	assert.ErrorIs(t, l.fw.ApplyPort(ctx, q), secgroup.ErrUnknownGroup)
	q = p.port
	q.MAC = nil
	assert.ErrorIs(t, l.fw.ApplyPort(ctx, q), secgroup.ErrInvalidPort)
	assert.ErrorIs(t, l.fw.DeleteGroup(ctx, "web"), secgroup.ErrGroupInUse)
	assert.ErrorIs(t, l.fw.Sync(ctx, []secgroup.Group{bad}, nil), secgroup.ErrUnknownGroup)

	assert.Equal(t, gen, genID(t, l.host.Path), "no transaction")
	assert.Equal(t, before, ruleset(t, l.host.Path))
	assert.True(t, pingEventually(t, l.plug(t, 3, "web"), p.v4))
}

// TestBridgeNetfilterTurnedOn: with bridge netfilter off in the host
// namespace (bridged packets would then skip the port chains, every port
// unfiltered), the Firewall turns it on before it filters, and a port
// without a rule for a TCP port drops it.
func TestBridgeNetfilterTurnedOn(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	ctx := t.Context()
	const sysctls = "/proc/sys/net/bridge/bridge-nf-call-iptables /proc/sys/net/bridge/bridge-nf-call-ip6tables"
	out, err := testenv.RunInNetns(t, ctx, l.host.Path, "sh", "-c", "for f in "+sysctls+"; do echo 0 >$f; done; cat "+sysctls)
	require.NoError(t, err, "%s", out)
	require.Equal(t, "0\n0\n", string(out))

	require.NoError(t, l.fw.SetGroup(ctx, webGroup("web", 8080)))
	require.NoError(t, l.fw.SetGroup(ctx, egressOnly))
	srv := l.plug(t, 2, "web")
	cli := l.plug(t, 3, "client")
	out, err = testenv.RunInNetns(t, ctx, l.host.Path, "sh", "-c", "cat "+sysctls)
	require.NoError(t, err, "%s", out)
	assert.Equal(t, "1\n1\n", string(out), "the Firewall turned bridge netfilter on")
	testenv.StartEchoServer(t, srv.ns.Path, "[::]:8080")
	testenv.StartEchoServer(t, srv.ns.Path, "[::]:8081")
	assert.True(t, reachEventually(t, cli, srv.v4, 8080))
	assert.False(t, reach(t, cli, srv.v4, 8081), "filtered")
	assert.False(t, reach(t, cli, srv.v6, 8081), "filtered")
}
