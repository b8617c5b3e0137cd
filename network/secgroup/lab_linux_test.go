package secgroup_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dockervisor/dockervisor/internal/testenv"
	"github.com/dockervisor/dockervisor/network"
	"github.com/dockervisor/dockervisor/network/internal/linkutil"
	"github.com/dockervisor/dockervisor/network/internal/nftutil"
	"github.com/dockervisor/dockervisor/network/linuxbridge"
	"github.com/dockervisor/dockervisor/network/ovs"
	"github.com/dockervisor/dockervisor/network/secgroup"
)

// lab is a private host namespace with a switch, a VIF driver and a
// Firewall, where instances (processes in namespaces of their own) are
// plugged: a Linux bridge and the linuxbridge driver (newLab), or a private
// Open vSwitch and the ovs driver's hybrid plug (newOVSLab), where the
// Firewall filters on each port's own Linux bridge.
type lab struct {
	host   testenv.Netns
	drv    network.VIFDriver
	fw     *secgroup.Firewall
	bridge string
	ovs    bool
}

func newLab(t *testing.T, opts ...secgroup.Option) *lab {
	t.Helper()
	testenv.MustHaveRoot(t)
	l := &lab{host: testenv.NewHostNetns(t), bridge: testenv.UniqueName("br")}
	lb, err := linuxbridge.New(linuxbridge.WithHostNetNS(l.host.Path))
	require.NoError(t, err)
	l.drv = lb
	l.newFirewall(t, opts...)
	return l
}

// newOVSLab is a lab on a private Open vSwitch (on the kernel datapath
// where the kernel has it) with hybrid-plugged ports.
func newOVSLab(t *testing.T, opts ...secgroup.Option) *lab {
	t.Helper()
	o := testenv.StartOVS(t)
	l := &lab{host: testenv.Netns{Name: o.NetNSName, Path: o.NetNS}, bridge: o.Bridge, ovs: true}
	d, err := ovs.New(ovs.WithDB(o.DB), ovs.WithHostNetNS(o.NetNS), ovs.WithTimeout(10*time.Second))
	require.NoError(t, err)
	l.drv = d
	l.newFirewall(t, opts...)
	return l
}

func (l *lab) newFirewall(t *testing.T, opts ...secgroup.Option) {
	t.Helper()
	var err error
	l.fw, err = secgroup.New(append([]secgroup.Option{secgroup.WithHostNetNS(l.host.Path)}, opts...)...)
	require.NoError(t, err)
	t.Cleanup(func() {
		// Whatever the test did, nothing of the Firewall may remain.
		if err := l.fw.Teardown(context.Background()); err != nil {
			t.Errorf("teardown: %v", err)
		}
	})
}

func portID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

func randomMAC() network.MAC {
	m := make([]byte, 6)
	_, _ = rand.Read(m)
	m[0] = 0xfa
	return network.MAC(m)
}

// instance is a plugged, attached instance.
type instance struct {
	vif  network.VIF
	ns   *testenv.NetnsProcess
	port secgroup.Port
	v4   string
	v6   string
}

// plug plugs an instance with the n-th address of 10.77.0.0/24 and
// fd00:77::/64 and applies its port in groups.
func (l *lab) plug(t *testing.T, n int, groups ...string) *instance {
	t.Helper()
	ctx := t.Context()
	vif := network.VIF{
		ID: portID(), Address: randomMAC(), Type: network.VIFTypeBridge, Bridge: l.bridge, MTU: 1400,
		Subnets: []network.Subnet{
			{CIDR: netip.MustParsePrefix("10.77.0.0/24"), IPs: []netip.Addr{netip.AddrFrom4([4]byte{10, 77, 0, byte(n)})}},
			{CIDR: netip.MustParsePrefix("fd00:77::/64"), IPs: []netip.Addr{netip.MustParseAddr(fmt.Sprintf("fd00:77::%d", n))}},
		},
	}
	if l.ovs {
		vif.Type, vif.HybridPlug = network.VIFTypeOVS, true
	}
	in := &instance{vif: vif, ns: testenv.StartNetnsProcess(t), v4: fmt.Sprintf("10.77.0.%d", n), v6: fmt.Sprintf("fd00:77::%d", n)}
	require.NoError(t, l.drv.Plug(ctx, "inst", vif))
	t.Cleanup(func() { _ = l.drv.Unplug(context.Background(), "inst", vif) })
	var err error
	in.port, err = secgroup.PortFromVIF(vif, groups...)
	require.NoError(t, err)
	require.NoError(t, l.fw.ApplyPort(ctx, in.port))
	require.NoError(t, l.drv.Attach(ctx, "inst", vif, network.Target{NetNS: in.ns.Path, IfName: "eth0"}))
	return in
}

func (l *lab) setGroups(t *testing.T, in *instance, groups ...string) {
	t.Helper()
	in.port.Groups = groups
	require.NoError(t, l.fw.ApplyPort(t.Context(), in.port))
}

func hostport(addr string, port int) string {
	return net.JoinHostPort(addr, fmt.Sprint(port))
}

// Probes come in two kinds. reach and ping make one attempt with a short
// timeout: use them where the traffic must be blocked (a slow host only
// makes such a check pass more easily). reachEventually and pingEventually
// repeat the attempt for up to eventuallyFor: use them where the traffic
// must get through, since the first packets of a flow can be slow (on Open
// vSwitch's kernel datapath they go up to the daemon, which is slow on an
// emulated kernel-lane machine) or wait on address resolution.
const eventuallyFor = 10 * time.Second

// eventually reports whether probe succeeds in repeated attempts within
// eventuallyFor.
func eventually(probe func() bool) bool {
	deadline := time.Now().Add(eventuallyFor)
	for !probe() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(100 * time.Millisecond)
	}
	return true
}

// reach reports whether a TCP connection from `from` to addr:port opens,
// in one attempt.
func reach(t *testing.T, from *instance, addr string, port int) bool {
	t.Helper()
	c, err := testenv.DialTCP(from.ns.Path, hostport(addr, port), 1500*time.Millisecond)
	if err != nil {
		return false
	}
	defer c.Close()
	return testenv.Echo(c, "hello", 3*time.Second) == nil
}

// reachEventually is reach, repeated until it succeeds or eventuallyFor
// has passed.
func reachEventually(t *testing.T, from *instance, addr string, port int) bool {
	t.Helper()
	return eventually(func() bool { return reach(t, from, addr, port) })
}

// ping reports whether `from` gets an answer to one ping of addr.
func ping(t *testing.T, from *instance, addr string) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	_, err := testenv.RunInNetns(t, ctx, from.ns.Path, "busybox", "ping", "-c", "1", "-W", "2", addr)
	return err == nil
}

// pingEventually is ping, repeated until it succeeds or eventuallyFor has
// passed.
func pingEventually(t *testing.T, from *instance, addr string) bool {
	t.Helper()
	return eventually(func() bool { return ping(t, from, addr) })
}

var (
	handleRE  = regexp.MustCompile(` # handle \d+`)
	counterRE = regexp.MustCompile(`counter packets \d+ bytes \d+`)
)

// ruleset is `nft list ruleset` in the namespace at path, without handles
// and counters.
func ruleset(t *testing.T, path string) string {
	t.Helper()
	out, err := exec.Command("nsenter", "--net="+path, "--", "nft", "list", "ruleset").CombinedOutput()
	require.NoError(t, err, "%s", out)
	s := handleRE.ReplaceAllString(string(out), "")
	return counterRE.ReplaceAllString(s, "counter")
}

// genID is the namespace's nf_tables generation (one per transaction).
func genID(t *testing.T, path string) uint32 {
	t.Helper()
	ns, err := linkutil.Open(path)
	require.NoError(t, err)
	defer ns.Close()
	g, err := nftutil.GenID(ns.Fd())
	require.NoError(t, err)
	return g
}

func noneOfOurs(t *testing.T, path string) {
	t.Helper()
	rs := ruleset(t, path)
	require.NotContains(t, rs, secgroup.TableName, "ruleset:\n%s", rs)
	require.Empty(t, strings.TrimSpace(rs), "ruleset:\n%s", rs)
}
