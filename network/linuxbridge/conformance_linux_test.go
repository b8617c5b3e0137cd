package linuxbridge_test

import (
	"context"
	"os"
	"slices"
	"testing"

	"github.com/dockervisor/dockervisor/internal/testenv"
	"github.com/dockervisor/dockervisor/network"
	"github.com/dockervisor/dockervisor/network/internal/linkutil"
	"github.com/dockervisor/dockervisor/network/linuxbridge"
	"github.com/dockervisor/dockervisor/network/networktest"
)

func harness(t *testing.T, wrap func(*linuxbridge.Driver, string) network.VIFDriver) networktest.Harness {
	d, host := newDriver(t)
	bridge := testenv.UniqueName("br")
	return networktest.Harness{
		Driver: wrap(d, host.Path),
		VIF:    func(n int) network.VIF { return networktest.TestVIF(network.VIFTypeBridge, bridge, n) },
		NewNamespace: func(t *testing.T) (string, func()) {
			p := testenv.StartNetnsProcess(t)
			return p.Path, p.Kill
		},
		HostState: func(t *testing.T) []string { return testenv.LinkState(t, host.Path) },
		GuestLinks: func(t *testing.T, path string) []string {
			names := slices.DeleteFunc(testenv.LinkNames(t, path), func(n string) bool { return n == "lo" })
			slices.Sort(names)
			return names
		},
		Ping: testenv.PingAddr,
		AddForeignDevice: func(t *testing.T, name string) networktest.ForeignDevice {
			return testenv.ForeignBridge(t, host.Path, name)
		},
	}
}

func TestConformance(t *testing.T) {
	testenv.MustHaveRoot(t)
	t.Parallel()
	networktest.TestVIFDriver(t, func(t *testing.T) networktest.Harness {
		return harness(t, func(d *linuxbridge.Driver, _ string) network.VIFDriver { return d })
	}, networktest.InParallel()) // each subtest has its own host namespace
}

// byName is the real driver with the bug the ownership cases of the suite
// were written for: it deletes whatever link has the VIF's tap name before
// it plugs (plug mode) or unplugs (unplug mode), as the driver once did.
type byName struct {
	*linuxbridge.Driver
	host, mode string
}

func (b byName) deleteTap(vif network.VIF) error {
	d, err := network.DeviceNames(vif.ID)
	if err != nil {
		return err
	}
	ns, err := linkutil.Open(b.host)
	if err != nil {
		return err
	}
	defer ns.Close()
	return ns.DeleteLink(d.Tap)
}

func (b byName) Plug(ctx context.Context, id string, vif network.VIF) error {
	if b.mode == "plug" {
		if err := b.deleteTap(vif); err != nil {
			return err
		}
	}
	return b.Driver.Plug(ctx, id, vif)
}

func (b byName) Unplug(ctx context.Context, id string, vif network.VIF) error {
	if b.mode == "unplug" {
		if err := b.deleteTap(vif); err != nil {
			return err
		}
	}
	return b.Driver.Unplug(ctx, id, vif)
}

const byNameEnv = "LINUXBRIDGE_DELETES_BY_NAME"

// TestDeleteByNameConformance runs the suite against the real driver with
// a delete-by-name bug. It is run, and expected to fail, by
// TestSuiteCatchesDeleteByName.
func TestDeleteByNameConformance(t *testing.T) {
	mode := os.Getenv(byNameEnv)
	if mode == "" {
		t.Skip("run by TestSuiteCatchesDeleteByName")
	}
	networktest.TestVIFDriver(t, func(t *testing.T) networktest.Harness {
		h := harness(t, func(d *linuxbridge.Driver, host string) network.VIFDriver {
			return byName{Driver: d, host: host, mode: mode}
		})
		// One echo request per check: the bug cuts traffic for good, so
		// the retries of a real harness would only make this run slow.
		h.Ping = testenv.PingAddrWithin(0)
		return h
	})
}

// TestSuiteCatchesDeleteByName proves, with real devices and packets, that
// the suite fails for a driver that deletes devices by name.
func TestSuiteCatchesDeleteByName(t *testing.T) {
	testenv.MustHaveRoot(t)
	testenv.SuiteCatchesBugs(t, "TestDeleteByNameConformance", byNameEnv, map[string]string{
		"plug":   "NameClashAcrossInstances",
		"unplug": "UnplugNeverPluggedNextToPlugged",
	})
}
