package docker

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dockervisor/dockervisor/hypervisor"
	"github.com/dockervisor/dockervisor/internal/testenv"
	"github.com/dockervisor/dockervisor/network"
	"github.com/dockervisor/dockervisor/network/linuxbridge"
	"github.com/dockervisor/dockervisor/network/ovs"
)

// requireNoInstance requires that nothing of instance id is left: no
// container, no record, no resolv.conf, no hosts file.
func (e *env) requireNoInstance(id string) {
	e.t.Helper()
	assert.Zero(e.t, e.containersNamed(e.drv.containerName(id)), "container of %s left", id)
	_, ok, err := e.drv.state.instances.Load(id)
	require.NoError(e.t, err)
	assert.False(e.t, ok, "record of %s left", id)
	assert.NoFileExists(e.t, e.drv.resolvConfPath(id))
	assert.NoFileExists(e.t, e.drv.hostsPath(id))
}

// Bad VIFs are refused before anything exists, with a typed error.
func TestSpawnBadVIFs(t *testing.T) {
	t.Parallel()
	lab := newBridgeLab(t)
	d := network.NewDispatcher()
	d.Handle(network.VIFTypeBridge, lab.drv) // no Open vSwitch driver
	e := newEnv(t, WithVIFDriver(d))
	ctx := t.Context()

	outside := lab.vif(1, 2)
	outside.Subnets[0].IPs = []netip.Addr{netip.MustParseAddr("192.0.2.7")}
	sameMAC := lab.vif(1, 3)
	sameMAC.Address = outside.Address
	sameMAC2 := lab.vif(1, 4)
	sameMAC2.Address = sameMAC.Address
	ovsVIF := lab.vif(1, 5)
	ovsVIF.Type = network.VIFTypeOVS
	cases := []struct {
		name  string
		vifs  []network.VIF
		class error
		cause error
	}{
		{"IP outside its subnet", []network.VIF{outside}, hypervisor.ErrInvalidArgument, network.ErrInvalidVIF},
		{"two VIFs with one MAC", []network.VIF{sameMAC, sameMAC2}, hypervisor.ErrInvalidArgument, network.ErrInvalidVIF},
		{"no driver for the type", []network.VIF{lab.vif(1, 6), ovsVIF}, hypervisor.ErrInvalidArgument, network.ErrUnsupportedVIFType},
	}
	for i, c := range cases {
		id := "bad" + strconv.Itoa(i)
		s := e.spec(id)
		s.VIFs = c.vifs
		_, err := e.drv.Spawn(ctx, s)
		require.ErrorIs(t, err, c.class, c.name)
		require.ErrorIs(t, err, c.cause, c.name)
		e.requireNoInstance(id)
	}
	lab.requireNothingLeft(t, slices.Concat(cases[0].vifs, cases[1].vifs, cases[2].vifs)...)

	// A Driver without a VIF driver refuses VIFs.
	plain := newEnv(t)
	s := plain.spec("novif")
	s.VIFs = []network.VIF{lab.vif(1, 7)}
	_, err := plain.drv.Spawn(ctx, s)
	require.ErrorIs(t, err, hypervisor.ErrNotSupported)
	plain.requireNoInstance("novif")
	assert.False(t, plain.drv.Capabilities().VIFs)
	require.ErrorIs(t, plain.drv.PlugVIFs(ctx, "x", s.VIFs), hypervisor.ErrNotSupported)
}

// An instance whose process dies while its VIF is attached: the start
// fails with an invalid-state error (the namespace is gone), and a failed
// Spawn leaves nothing behind.
func TestSpawnProcessDiesDuringAttach(t *testing.T) {
	t.Parallel()
	host := testenv.NewHostNetns(t)
	var once sync.Once
	drv, err := linuxbridge.New(linuxbridge.WithHostNetNS(host.Path), linuxbridge.WithAttachHook(func(_ context.Context, _ network.VIF, tg network.Target) error {
		once.Do(func() {
			pid, _ := strconv.Atoi(strings.Split(tg.NetNS, "/")[2])
			_ = syscall.Kill(pid, syscall.SIGKILL)
			for syscall.Kill(pid, 0) == nil { // until it is reaped
				runtimeGosched()
			}
		})
		return nil
	}))
	require.NoError(t, err)
	t.Cleanup(func() { drv.Close() })
	lab := &netLab{kind: "linuxbridge", host: host.Path, bridge: testenv.UniqueName("br"), drv: drv, net: labNet()}
	e := newEnv(t, WithVIFDriver(drv))
	s := e.spec("dies")
	s.VIFs = []network.VIF{lab.vif(1, 2)}
	_, err = e.drv.Spawn(t.Context(), s)
	require.ErrorIs(t, err, hypervisor.ErrInvalidState)
	require.ErrorIs(t, err, network.ErrNamespaceGone)
	_, ok := errors.AsType[*hypervisor.StateError](err)
	assert.True(t, ok, "a *StateError in %v", err)
	e.requireNoInstance("dies")
	lab.requireNothingLeft(t, s.VIFs...)
}

// killingRunner kills Open vSwitch's database just before the first
// add-port, so a plug fails in its middle (its devices exist by then).
type killingRunner struct {
	ovs.Runner
	o    *testenv.OVS
	once sync.Once
}

func (k *killingRunner) Run(ctx context.Context, args ...string) ([]byte, error) {
	if slices.Contains(args, "add-port") {
		k.once.Do(k.o.KillDB)
	}
	return k.Runner.Run(ctx, args...)
}

// Open vSwitch going down in the middle of a plug during Spawn: a typed
// error, and no container, record or host device left.
func TestSpawnOVSDownMidPlug(t *testing.T) {
	t.Parallel()
	o := testenv.StartOVS(t) // a private switch: this test breaks it
	lab := newOVSLab(t, o, true, ovs.WithRunner(&killingRunner{Runner: ovs.Vsctl{DB: o.DB, Timeout: 2e9}, o: o}))
	e := newEnv(t, WithVIFDriver(lab.drv))
	s := e.spec("ovsdown")
	s.VIFs = []network.VIF{lab.vif(1, 2)}
	_, err := e.drv.Spawn(t.Context(), s)
	require.ErrorIs(t, err, hypervisor.ErrUnavailable)
	require.ErrorIs(t, err, network.ErrUnavailable)
	e.requireNoInstance("ovsdown")
	links := lab.hostLinks(t)
	dev, _ := network.DeviceNames(s.VIFs[0].ID)
	for _, n := range []string{dev.Tap, dev.Bridge, dev.VethBridge, dev.VethOVS} {
		assert.NotContains(t, links, n, fmt.Sprintf("%s left", n))
	}
}

func runtimeGosched() { runtime.Gosched() }
