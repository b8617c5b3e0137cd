package ovs_test

import (
	"context"
	"fmt"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dockervisor/dockervisor/internal/testenv"
	"github.com/dockervisor/dockervisor/network"
)

// BenchmarkHybridPlugAttach measures an OVS hybrid plug plus attach of one
// VIF (qbr, qvb/qvo with TX checksum off, an OVSDB read of the port, the
// port with its external-ids in one ovs-vsctl transaction and its ofport
// check, then tap/eth0 into
// the instance's namespace with MAC, MTU and two addresses) against the
// same steps shelled out to ip, ethtool and ovs-vsctl, in the same run.
// It reports the median of each (driver-ms, shell-ms) and their ratio
// (shell/driver).
func BenchmarkHybridPlugAttach(b *testing.B) {
	o := testenv.MustHaveOVS(b)
	ctx := context.WithoutCancel(b.Context())
	d := newDriver(b, o)
	net4, net6 := testNets()
	vif := testVIF(true, 1, net4, net6)
	target := network.Target{NetNS: newNetns(b), IfName: "eth0"}
	names, _ := network.DeviceNames(vif.ID)
	guestName := strings.TrimPrefix(target.NetNS, "/run/netns/")
	b.Cleanup(func() { _ = d.Unplug(ctx, "inst", vif) })

	var drv, sh []time.Duration
	for b.Loop() {
		start := time.Now()
		if err := d.Plug(ctx, "inst", vif); err != nil {
			b.Fatal(err)
		}
		if err := d.Attach(ctx, "inst", vif, target); err != nil {
			b.Fatal(err)
		}
		drv = append(drv, time.Since(start))
		b.StopTimer()
		if err := d.Detach(ctx, "inst", vif, target); err != nil {
			b.Fatal(err)
		}
		if err := d.Unplug(ctx, "inst", vif); err != nil {
			b.Fatal(err)
		}
		start = time.Now()
		shellPlugAttach(b, o, vif, names, guestName)
		sh = append(sh, time.Since(start))
		shellUnplug(b, o, names, guestName)
		b.StartTimer()
	}
	md, ms := median(drv), median(sh)
	b.ReportMetric(float64(md.Microseconds())/1000, "driver-ms")
	b.ReportMetric(float64(ms.Microseconds())/1000, "shell-ms")
	b.ReportMetric(float64(ms)/float64(md), "shell/driver")
}

func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

// shellPlugAttach is the baseline: the plug and attach as the commands a
// shell-out driver (nova-docker, os-vif's Linux helpers) runs.
func shellPlugAttach(b *testing.B, o *testenv.OVS, vif network.VIF, n network.Devices, guest string) {
	b.Helper()
	host := o.NetNSName
	mtu := strconv.Itoa(vif.MTU)
	run := func(args ...string) {
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			b.Fatalf("%s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	ip := func(ns string, args ...string) { run(append([]string{"ip", "-n", ns}, args...)...) }
	ip(host, "link", "add", n.Bridge, "type", "bridge", "forward_delay", "0", "stp_state", "0")
	ip(host, "link", "set", n.Bridge, "up")
	ip(host, "link", "add", n.VethBridge, "mtu", mtu, "type", "veth", "peer", "name", n.VethOVS, "mtu", mtu)
	ip(host, "link", "set", n.VethBridge, "master", n.Bridge, "up")
	ip(host, "link", "set", n.VethOVS, "up")
	run("ip", "netns", "exec", host, "ethtool", "-K", n.VethBridge, "tx", "off")
	run("ovs-vsctl", "--timeout=10", "--db="+o.DB, "--", "--may-exist", "add-port", o.Bridge, n.VethOVS,
		"--", "set", "Interface", n.VethOVS, "external-ids:iface-id="+vif.ID, "external-ids:iface-status=active",
		"external-ids:attached-mac="+vif.Address.String(), "external-ids:vm-uuid=inst")
	if out, err := exec.Command("ovs-vsctl", "--timeout=10", "--db="+o.DB, "get", "Interface", n.VethOVS, "ofport").Output(); err != nil || strings.TrimSpace(string(out)) == "-1" {
		b.Fatalf("ofport %s: %v", out, err)
	}
	ip(host, "link", "add", n.Tap, "mtu", mtu, "type", "veth", "peer", "name", "eth0", "mtu", mtu, "netns", guest)
	ip(host, "link", "set", n.Tap, "master", n.Bridge, "up")
	ip(guest, "link", "set", "eth0", "address", vif.Address.String())
	for _, s := range vif.Subnets {
		for _, a := range s.IPs {
			ip(guest, "addr", "add", fmt.Sprintf("%s/%d", a, s.CIDR.Bits()), "dev", "eth0", "nodad")
		}
	}
	ip(guest, "link", "set", "eth0", "up")
	ip(guest, "link", "set", "lo", "up")
}

func shellUnplug(b *testing.B, o *testenv.OVS, n network.Devices, guest string) {
	b.Helper()
	for _, args := range [][]string{
		{"ovs-vsctl", "--timeout=10", "--db=" + o.DB, "--if-exists", "del-port", n.VethOVS},
		{"ip", "-n", guest, "link", "del", "eth0"},
		{"ip", "-n", o.NetNSName, "link", "del", n.VethBridge},
		{"ip", "-n", o.NetNSName, "link", "del", n.Bridge},
	} {
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			b.Fatalf("%s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
}
