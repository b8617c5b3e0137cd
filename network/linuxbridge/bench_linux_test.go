package linuxbridge_test

import (
	"bytes"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/dockervisor/dockervisor/internal/testenv"
	"github.com/dockervisor/dockervisor/network"
	"github.com/dockervisor/dockervisor/network/internal/linkutil"
	"github.com/dockervisor/dockervisor/network/linuxbridge"
)

const cniBridge = "/usr/lib/cni/bridge"

func median(ds []time.Duration) float64 {
	s := slices.Clone(ds)
	slices.Sort(s)
	return float64(s[len(s)/2].Microseconds())
}

// BenchmarkPlugAttach measures, in one run, the plug and attach of one VIF
// (veth on an existing bridge in a private host namespace, guest end in an
// instance's namespace, named eth0, with MAC, MTU, an IPv4 address, a host
// route and a default route) three ways: this driver; the same steps as a
// sequence of `ip` commands (the shell-out way of nova-docker); and the CNI
// reference bridge plugin with static IPAM. It reports the medians in µs
// and the ratios to the driver. IPv4 only: the CNI plugin waits for IPv6
// duplicate address detection to settle, which would measure that wait.
func BenchmarkPlugAttach(b *testing.B) {
	testenv.MustHaveRoot(b)
	if _, err := os.Stat(cniBridge); err != nil {
		testenv.Missing(b, "CNI bridge plugin %s: %v (Debian containernetworking-plugins)", cniBridge, err)
	}
	host, guest := testenv.NewHostNetns(b), testenv.NewGuestNetns(b)
	hns, err := linkutil.Open(host.Path)
	if err != nil {
		b.Fatal(err)
	}
	defer hns.Close()
	gns, err := linkutil.Open(guest.Path)
	if err != nil {
		b.Fatal(err)
	}
	defer gns.Close()
	bridge := "brbench"
	// Not marked as ours: an existing bridge all three methods share.
	if err := hns.Handle().LinkAdd(&netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: bridge, Flags: 1, TxQLen: -1}}); err != nil {
		b.Fatal(err)
	}
	d, err := linuxbridge.New(linuxbridge.WithHostNetNS(host.Path))
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	// settle lets the kernel finish the previous teardown's deferred work
	// (device unregistration) outside the timed sections, for every method
	// alike.
	settle := func() { time.Sleep(20 * time.Millisecond) }
	v := network.VIF{
		ID: portID(), Address: network.MustParseMAC("fa:16:3e:00:be:01"), Type: network.VIFTypeBridge, Bridge: bridge, MTU: 1400,
		Subnets: []network.Subnet{{
			CIDR: netip.MustParsePrefix("10.99.0.0/24"), Gateway: netip.MustParseAddr("10.99.0.1"),
			IPs:    []netip.Addr{netip.MustParseAddr("10.99.0.2")},
			Routes: []network.Route{{Dest: netip.MustParsePrefix("192.168.99.0/24"), Gateway: netip.MustParseAddr("10.99.0.254")}},
		}},
	}
	target := network.Target{NetNS: guest.Path, IfName: "eth0", DefaultRouteV4: true}
	names, _ := network.DeviceNames(v.ID)
	ctx := b.Context()

	ipSteps := [][]string{
		{"-n", host.Name, "link", "add", names.Tap, "mtu", "1400", "type", "veth", "peer", "name", names.Guest, "mtu", "1400"},
		{"-n", host.Name, "link", "set", names.Tap, "master", bridge},
		{"-n", host.Name, "link", "set", names.Tap, "up"},
		{"-n", host.Name, "link", "set", names.Guest, "netns", guest.Name},
		{"-n", guest.Name, "link", "set", names.Guest, "name", "eth0"},
		{"-n", guest.Name, "link", "set", "eth0", "address", v.Address.String()},
		{"-n", guest.Name, "addr", "add", "10.99.0.2/24", "dev", "eth0"},
		{"-n", guest.Name, "link", "set", "eth0", "up"},
		{"-n", guest.Name, "link", "set", "lo", "up"},
		{"-n", guest.Name, "route", "replace", "192.168.99.0/24", "via", "10.99.0.254", "dev", "eth0"},
		{"-n", guest.Name, "route", "replace", "default", "via", "10.99.0.1", "dev", "eth0"},
	}
	ip := func(args ...string) {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			b.Fatalf("ip %v: %v: %s", args, err, out)
		}
	}
	cniConf := fmt.Appendf(nil, `{"cniVersion": "1.0.0", "name": "bench", "type": "bridge", "bridge": %q, "mtu": 1400,
	 "ipam": {"type": "static", "addresses": [{"address": "10.99.0.2/24", "gateway": "10.99.0.1"}],
	  "routes": [{"dst": "0.0.0.0/0", "gw": "10.99.0.1"}, {"dst": "192.168.99.0/24", "gw": "10.99.0.254"}]}}`, bridge)
	cni := func(cmd string) {
		// The plugin's host side is the namespace it runs in.
		err := hns.Do(func() error {
			c := exec.Command(cniBridge)
			c.Env = []string{"CNI_COMMAND=" + cmd, "CNI_CONTAINERID=bench", "CNI_NETNS=" + guest.Path, "CNI_IFNAME=eth0", "CNI_PATH=/usr/lib/cni", "PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
			c.Stdin = bytes.NewReader(cniConf)
			out, err := c.CombinedOutput()
			if err != nil {
				return fmt.Errorf("CNI %s: %w: %s", cmd, err, out)
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	// check verifies that a method configured the guest as the others do.
	check := func(method string) {
		l, err := gns.Link("eth0")
		if err != nil || l == nil {
			b.Fatalf("%s: no eth0 in the guest: %v", method, err)
		}
		addrs, _ := gns.AddrList(l, netlink.FAMILY_V4)
		routes, _ := gns.RouteList(l, netlink.FAMILY_V4)
		if l.Attrs().MTU != 1400 || len(addrs) != 1 || addrs[0].IPNet.String() != "10.99.0.2/24" || len(routes) != 3 || l.Attrs().MasterIndex != 0 {
			b.Fatalf("%s: eth0 mtu %d, addrs %v, routes %v", method, l.Attrs().MTU, addrs, routes)
		}
	}

	var tDrv, tIP, tCNI []time.Duration
	for i := 0; b.Loop(); i++ {
		t0 := time.Now()
		if err := d.Plug(ctx, "bench", v); err != nil {
			b.Fatal(err)
		}
		if err := d.Attach(ctx, "bench", v, target); err != nil {
			b.Fatal(err)
		}
		tDrv = append(tDrv, time.Since(t0))
		if i == 0 {
			check("driver")
		}
		if err := d.Detach(ctx, "bench", v, target); err != nil {
			b.Fatal(err)
		}
		if err := d.Unplug(ctx, "bench", v); err != nil {
			b.Fatal(err)
		}
		settle()

		t0 = time.Now()
		for _, s := range ipSteps {
			ip(s...)
		}
		tIP = append(tIP, time.Since(t0))
		if i == 0 {
			check("ip")
		}
		ip("-n", host.Name, "link", "del", names.Tap)
		settle()

		t0 = time.Now()
		cni("ADD")
		tCNI = append(tCNI, time.Since(t0))
		if i == 0 {
			check("cni")
		}
		cni("DEL")
		settle()
	}
	md, mi, mc := median(tDrv), median(tIP), median(tCNI)
	b.ReportMetric(md, "driver-µs")
	b.ReportMetric(mi, "ip-µs")
	b.ReportMetric(mc, "cni-µs")
	b.ReportMetric(mi/md, "ip/driver")
	b.ReportMetric(mc/md, "cni/driver")
}
