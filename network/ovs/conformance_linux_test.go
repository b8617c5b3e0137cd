package ovs_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/dockervisor/dockervisor/internal/testenv"
	"github.com/dockervisor/dockervisor/network"
	"github.com/dockervisor/dockervisor/network/networktest"
)

// TestConformance runs the VIFDriver suite against the hybrid and the
// direct plug, each variant on a private Open vSwitch of its own, so that
// the host state it compares (links in the host namespace, ports on the
// integration bridge) is the driver's alone. A variant's subtests run one
// at a time on its switch (the suite checks that each leaves the switch as
// it found it); the two variants run in parallel. One switch per variant,
// not per subtest: a switch's start and stop cost seconds of CPU in the
// kernel lane's emulated guest.
func TestConformance(t *testing.T) {
	testenv.MustHaveOVS(t) // gate like the other tests
	for _, hybrid := range []bool{true, false} {
		t.Run(map[bool]string{true: "hybrid", false: "direct"}[hybrid], func(t *testing.T) {
			t.Parallel()
			o := testenv.StartOVS(t)
			networktest.TestVIFDriver(t, func(t *testing.T) networktest.Harness {
				d := newDriver(t, o)
				return networktest.Harness{
					Driver: d,
					VIF: func(n int) network.VIF {
						v := networktest.TestVIF(network.VIFTypeOVS, o.Bridge, n)
						v.HybridPlug = hybrid
						return v
					},
					NewNamespace: func(t *testing.T) (string, func()) {
						p := testenv.StartNetnsProcess(t)
						return p.Path, p.Kill
					},
					HostState: func(t *testing.T) []string {
						state := testenv.LinkState(t, o.NetNS)
						for _, p := range strings.Fields(o.MustVsctl(t, "list-ports", o.Bridge)) {
							state = append(state, "ovs-port:"+p)
						}
						slices.Sort(state)
						return state
					},
					GuestLinks: func(t *testing.T, path string) []string {
						names := slices.DeleteFunc(testenv.LinkNames(t, path), func(n string) bool { return n == "lo" })
						slices.Sort(names)
						return names
					},
					Ping: testenv.PingAddr,
					AddForeignDevice: func(t *testing.T, name string) networktest.ForeignDevice {
						return testenv.ForeignBridge(t, o.NetNS, name)
					},
				}
			})
		})
	}
}
