package floatingip_test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/netip"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dockervisor/dockervisor/internal/testenv"
	"github.com/dockervisor/dockervisor/network"
	"github.com/dockervisor/dockervisor/network/floatingip"
	"github.com/dockervisor/dockervisor/network/linuxbridge"
)

func sh(t *testing.T, args ...string) {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	require.NoError(t, err, "%v: %s", args, out)
}

func nsOut(t *testing.T, path string, args ...string) string {
	t.Helper()
	out, err := exec.Command("nsenter", append([]string{"--net=" + path, "--"}, args...)...).CombinedOutput()
	require.NoError(t, err, "%v: %s", args, out)
	return string(out)
}

// fipLab: a host namespace that routes between an instance on a Linux
// bridge (10.88.0.0/24, gateway 10.88.0.1) and an "external" namespace on
// its public interface (203.0.113.0/24); the external side has no route to
// the fixed network, so only floating IPs reach it.
type fipLab struct {
	host, ext testenv.Netns
	inst      *testenv.NetnsProcess
	public    string
	fixed     netip.Addr
}

func newFIPLab(t *testing.T) *fipLab {
	t.Helper()
	testenv.MustHaveRoot(t)
	ctx := t.Context()
	l := &fipLab{host: testenv.NewHostNetns(t), ext: testenv.NewGuestNetns(t), public: testenv.UniqueName("pub"),
		fixed: netip.MustParseAddr("10.88.0.2")}
	bridge := testenv.UniqueName("br")
	lb, err := linuxbridge.New(linuxbridge.WithHostNetNS(l.host.Path))
	require.NoError(t, err)
	mac := make([]byte, 6)
	_, _ = rand.Read(mac)
	mac[0] = 0xfa
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	vif := network.VIF{ID: fmt.Sprintf("%x", b), Address: network.MAC(mac), Type: network.VIFTypeBridge, Bridge: bridge,
		Subnets: []network.Subnet{{CIDR: netip.MustParsePrefix("10.88.0.0/24"), Gateway: netip.MustParseAddr("10.88.0.1"), IPs: []netip.Addr{l.fixed}}}}
	require.NoError(t, lb.Plug(ctx, "i", vif))
	t.Cleanup(func() { _ = lb.Unplug(context.Background(), "i", vif) })
	l.inst = testenv.StartNetnsProcess(t)
	require.NoError(t, lb.Attach(ctx, "i", vif, network.Target{NetNS: l.inst.Path, IfName: "eth0", DefaultRouteV4: true}))

	sh(t, "ip", "-n", l.host.Name, "addr", "add", "10.88.0.1/24", "dev", bridge)
	nsOut(t, l.host.Path, "sysctl", "-qw", "net.ipv4.ip_forward=1")
	sh(t, "ip", "-n", l.host.Name, "link", "add", l.public, "type", "veth", "peer", "name", "ext0", "netns", l.ext.Name)
	sh(t, "ip", "-n", l.host.Name, "addr", "add", "203.0.113.1/24", "dev", l.public)
	sh(t, "ip", "-n", l.host.Name, "link", "set", l.public, "up")
	sh(t, "ip", "-n", l.ext.Name, "addr", "add", "203.0.113.2/24", "dev", "ext0")
	sh(t, "ip", "-n", l.ext.Name, "link", "set", "ext0", "up")
	sh(t, "ip", "-n", l.ext.Name, "link", "set", "lo", "up")
	return l
}

func (l *fipLab) binder(t *testing.T, opts ...floatingip.Option) *floatingip.Binder {
	t.Helper()
	b, err := floatingip.New(l.public, append([]floatingip.Option{floatingip.WithHostNetNS(l.host.Path)}, opts...)...)
	require.NoError(t, err)
	return b
}

func (l *fipLab) publicAddrs(t *testing.T) string {
	return nsOut(t, l.host.Path, "ip", "-4", "-o", "addr", "show", "dev", l.public)
}

// dialEcho connects from the namespace at path to addr in one attempt with
// a short timeout, and checks that a line echoes: use it where the
// connection must fail (a slow host only makes such a check pass more
// easily).
func dialEcho(path, addr string) error {
	return dialEchoWithin(path, addr, 0)
}

// dialEchoEventually is dialEcho where the connection must open: it repeats
// the connection attempt for up to 10 s, since the first packets of a flow
// can be slow on an emulated kernel-lane machine, or wait on address
// resolution (an earlier failed attempt leaves the neighbour entry
// unresolved, and a SYN that waits on it is sent again only after 1 s).
// Once connected it echoes once: the echo servers record one peer per
// accepted connection.
func dialEchoEventually(path, addr string) error {
	return dialEchoWithin(path, addr, 10*time.Second)
}

func dialEchoWithin(path, addr string, retryFor time.Duration) error {
	deadline := time.Now().Add(retryFor)
	c, err := testenv.DialTCP(path, addr, 1500*time.Millisecond)
	for err != nil && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
		c, err = testenv.DialTCP(path, addr, 1500*time.Millisecond)
	}
	if err != nil {
		return err
	}
	defer c.Close()
	return testenv.Echo(c, "hi", 3*time.Second)
}

// TestFloatingIPTraffic: a client outside reaches the instance through its
// floating IP, the instance's own connections arrive outside from the
// floating IP, and unbinding leaves nothing.
func TestFloatingIPTraffic(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	l := newFIPLab(t)
	fb := l.binder(t)
	floating := netip.MustParseAddr("203.0.113.10")
	inSrv := testenv.StartEchoServer(t, l.inst.Path, "0.0.0.0:8080")
	extSrv := testenv.StartEchoServer(t, l.ext.Path, "0.0.0.0:9090")
	require.Error(t, dialEcho(l.ext.Path, "203.0.113.10:8080"), "no binding yet")

	require.NoError(t, fb.Bind(ctx, floating, l.fixed))
	require.NoError(t, fb.Bind(ctx, floating, l.fixed), "bind twice")
	list, err := fb.List(ctx)
	require.NoError(t, err)
	assert.Equal(t, []floatingip.Binding{{Floating: floating, Fixed: l.fixed}}, list)
	assert.Contains(t, l.publicAddrs(t), "203.0.113.10/32")

	require.NoError(t, dialEchoEventually(l.ext.Path, "203.0.113.10:8080"), "inbound through the floating IP")
	assert.Equal(t, []string{"203.0.113.2"}, inSrv.Peers(), "the instance sees the external client")
	require.NoError(t, dialEchoEventually(l.inst.Path, "203.0.113.2:9090"), "outbound")
	assert.Equal(t, []string{"203.0.113.10"}, extSrv.Peers(), "outbound traffic leaves from the floating IP")

	// A second fixed IP for the same floating IP, a second floating IP for
	// the same fixed IP: errors, nothing changes.
	assert.ErrorIs(t, fb.Bind(ctx, floating, netip.MustParseAddr("10.88.0.3")), floatingip.ErrAlreadyBound)
	assert.ErrorIs(t, fb.Bind(ctx, netip.MustParseAddr("203.0.113.11"), l.fixed), floatingip.ErrAlreadyBound)
	list, err = fb.List(ctx)
	require.NoError(t, err)
	assert.Len(t, list, 1)
	assert.NotContains(t, l.publicAddrs(t), "203.0.113.11")

	// A restarted agent sees the binding in the kernel.
	list, err = l.binder(t).List(ctx)
	require.NoError(t, err)
	assert.Equal(t, []floatingip.Binding{{Floating: floating, Fixed: l.fixed}}, list)

	require.NoError(t, fb.Unbind(ctx, floating))
	require.NoError(t, fb.Unbind(ctx, floating), "unbind twice")
	assert.Error(t, dialEcho(l.ext.Path, "203.0.113.10:8080"), "unbound")
	assert.Empty(t, strings.TrimSpace(nsOut(t, l.host.Path, "nft", "list", "ruleset")))
	assert.NotContains(t, l.publicAddrs(t), "203.0.113.10")
	assert.Contains(t, l.publicAddrs(t), "203.0.113.1/24", "the interface's own address stays")
}

// TestBindRollback: a Bind that fails after adding the address removes it
// and leaves no table; bad input is a typed error.
func TestBindRollback(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	l := newFIPLab(t)
	boom := errors.New("injected")
	fb := l.binder(t, floatingip.WithCommitHook(func() error { return boom }))
	err := fb.Bind(ctx, netip.MustParseAddr("203.0.113.20"), l.fixed)
	require.ErrorIs(t, err, boom)
	assert.NotContains(t, l.publicAddrs(t), "203.0.113.20")
	assert.Empty(t, strings.TrimSpace(nsOut(t, l.host.Path, "nft", "list", "ruleset")))

	ok := l.binder(t)
	for _, bad := range []struct{ f, x string }{{"2001:db8::1", "10.88.0.2"}, {"203.0.113.20", "fd00::2"}, {"0.0.0.0", "10.88.0.2"}, {"224.0.0.1", "10.88.0.2"}, {"10.88.0.2", "10.88.0.2"}} {
		f, x := netip.MustParseAddr(bad.f), netip.MustParseAddr(bad.x)
		assert.ErrorIs(t, ok.Bind(ctx, f, x), floatingip.ErrInvalidAddress, "%v", bad)
	}
	assert.ErrorIs(t, ok.Bind(ctx, netip.Addr{}, l.fixed), floatingip.ErrInvalidAddress)
	missing, err := floatingip.New("nosuchdev0", floatingip.WithHostNetNS(l.host.Path))
	require.NoError(t, err)
	err = missing.Bind(ctx, netip.MustParseAddr("203.0.113.20"), l.fixed)
	assert.ErrorIs(t, err, floatingip.ErrNoInterface)
	assert.ErrorIs(t, err, network.ErrInvalidVIF)
	assert.Empty(t, strings.TrimSpace(nsOut(t, l.host.Path, "nft", "list", "ruleset")))
}
