package secgroup_test

import (
	"fmt"
	"os/exec"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dockervisor/dockervisor/internal/testenv"
	"github.com/dockervisor/dockervisor/network"
	"github.com/dockervisor/dockervisor/network/secgroup"
)

func group50(id string, base int) secgroup.Group {
	g := secgroup.Group{ID: id}
	for i := range 50 {
		g.Rules = append(g.Rules, secgroup.Rule{Direction: secgroup.Ingress, EtherType: secgroup.IPv4, Protocol: "tcp",
			PortRangeMin: new(base + i), RemoteIPPrefix: fmt.Sprintf("10.%d.0.0/16", i)})
	}
	return g
}

func benchPort(bridge string, n int, groups ...string) secgroup.Port {
	return secgroup.Port{ID: fmt.Sprintf("port-%04d-0000", n), Device: fmt.Sprintf("tapport-%04d", n), Bridge: bridge,
		MAC: network.MAC{0xfa, 0x16, 0x3e, 0, byte(n >> 8), byte(n)}, IPs: nil, Groups: groups}
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}

// iptablesRules adds the same 50 rules (and the port's dispatch rule) one
// iptables-nft command at a time, as per-rule firewall drivers did; with
// flush it first empties the chain (an update).
func iptablesRules(b *testing.B, host string, chain string, g secgroup.Group, create bool) {
	b.Helper()
	run := func(args ...string) {
		out, err := exec.Command("nsenter", append([]string{"--net=" + host, "--", "iptables-nft", "-w"}, args...)...).CombinedOutput()
		require.NoError(b, err, "%v: %s", args, out)
	}
	if create {
		run("-N", chain)
		run("-A", "FORWARD", "-m", "physdev", "--physdev-out", "tapbaseline", "--physdev-is-bridged", "-j", chain)
	} else {
		run("-F", chain)
	}
	run("-A", chain, "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", "-j", "RETURN")
	for _, r := range g.Rules {
		run("-A", chain, "-s", r.RemoteIPPrefix, "-p", "tcp", "--dport", fmt.Sprint(*r.PortRangeMin), "-j", "RETURN")
	}
	run("-A", chain, "-j", "DROP")
}

// BenchmarkApplyAndUpdate50 measures, in one run, applying a 50-rule group
// to one port and updating it, against the same rules added one
// iptables-nft command at a time. It reports medians and the ratios;
// update-ms is the switch to the new rules (what SetGroup waits for),
// cleanup-ms the later deletion of the unreachable old chains.
func BenchmarkApplyAndUpdate50(b *testing.B) {
	testenv.MustHaveRoot(b)
	host := testenv.NewHostNetns(b)
	bridge := testenv.UniqueName("br")
	sh := func(args ...string) {
		out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
		require.NoError(b, err, "%s", out)
	}
	sh("ip", "-n", host.Name, "link", "add", bridge, "type", "bridge")
	// The cleanup of the chains an update leaves unreachable is measured
	// on its own (Settle), not left to the background.
	fw, err := secgroup.New(secgroup.WithHostNetNS(host.Path), secgroup.WithCleanupDelay(-1))
	require.NoError(b, err)
	ctx := b.Context()
	b.Cleanup(func() { _ = fw.Teardown(ctx) })
	ga, gb := group50("a", 1000), group50("a", 2000)
	// An anchor port keeps the tables, so Apply measures adding one port.
	require.NoError(b, fw.SetGroup(ctx, secgroup.Group{ID: "anchor"}))
	require.NoError(b, fw.ApplyPort(ctx, benchPort(bridge, 0, "anchor")))
	require.NoError(b, fw.SetGroup(ctx, ga))

	var apply, update, cleanup, ipApply, ipUpdate []time.Duration
	for i := 0; b.Loop(); i++ {
		p := benchPort(bridge, 1, "a")
		t0 := time.Now()
		require.NoError(b, fw.ApplyPort(ctx, p))
		apply = append(apply, time.Since(t0))
		t0 = time.Now()
		require.NoError(b, fw.SetGroup(ctx, gb))
		update = append(update, time.Since(t0))
		t0 = time.Now()
		require.NoError(b, fw.Settle(ctx))
		cleanup = append(cleanup, time.Since(t0))
		require.NoError(b, fw.RemovePort(ctx, p.ID))
		require.NoError(b, fw.SetGroup(ctx, ga))

		if i < 5 { // the baseline is slow: a few samples suffice for a median
			chain := fmt.Sprintf("sgbase%d", i)
			t0 = time.Now()
			iptablesRules(b, host.Path, chain, ga, true)
			ipApply = append(ipApply, time.Since(t0))
			t0 = time.Now()
			iptablesRules(b, host.Path, chain, gb, false)
			ipUpdate = append(ipUpdate, time.Since(t0))
		}
	}
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	b.ReportMetric(ms(median(apply)), "apply-ms")
	b.ReportMetric(ms(median(update)), "update-ms")
	b.ReportMetric(ms(median(cleanup)), "cleanup-ms")
	b.ReportMetric(ms(median(ipApply)), "iptables-apply-ms")
	b.ReportMetric(ms(median(ipUpdate)), "iptables-update-ms")
	b.ReportMetric(float64(median(ipApply))/float64(median(apply)), "apply-speedup")
	b.ReportMetric(float64(median(ipUpdate))/float64(median(update)), "update-speedup")
	b.Cleanup(func() {
		_ = exec.Command("nsenter", "--net="+host.Path, "--", "iptables-nft", "-F").Run()
	})
}

// BenchmarkResync100x50 measures a full resync of 100 ports, each in its
// own 50-rule group.
func BenchmarkResync100x50(b *testing.B) {
	testenv.MustHaveRoot(b)
	host := testenv.NewHostNetns(b)
	bridge := testenv.UniqueName("br")
	out, err := exec.Command("ip", "-n", host.Name, "link", "add", bridge, "type", "bridge").CombinedOutput()
	require.NoError(b, err, "%s", out)
	var groups []secgroup.Group
	var ports []secgroup.Port
	for i := range 100 {
		id := fmt.Sprintf("g%d", i)
		groups = append(groups, group50(id, 1000+i))
		ports = append(ports, benchPort(bridge, i, id))
	}
	ctx := b.Context()
	fw, err := secgroup.New(secgroup.WithHostNetNS(host.Path))
	require.NoError(b, err)
	b.Cleanup(func() { _ = fw.Teardown(ctx) })
	var d []time.Duration
	for b.Loop() {
		t0 := time.Now()
		require.NoError(b, fw.Sync(ctx, groups, ports))
		d = append(d, time.Since(t0))
	}
	b.ReportMetric(float64(median(d))/float64(time.Millisecond), "resync-ms")
}
