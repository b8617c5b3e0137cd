package linuxbridge_test

import (
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dockervisor/dockervisor/internal/testenv"
	"github.com/dockervisor/dockervisor/network"
	"github.com/dockervisor/dockervisor/network/networktest"
)

func TestConformance(t *testing.T) {
	testenv.MustHaveRoot(t)
	t.Parallel()
	networktest.TestVIFDriver(t, func(t *testing.T) networktest.Harness {
		d, host := newDriver(t)
		bridge := testenv.UniqueName("br")
		return networktest.Harness{
			Driver: d,
			VIF:    func(n int) network.VIF { return networktest.TestVIF(network.VIFTypeBridge, bridge, n) },
			NewNamespace: func(t *testing.T) (string, func()) {
				p := testenv.StartNetnsProcess(t)
				return p.Path, p.Kill
			},
			HostState: func(t *testing.T) []string {
				names := hostLinks(t, host.Path)
				slices.Sort(names)
				return names
			},
			GuestLinks: func(t *testing.T, path string) []string {
				names := slices.DeleteFunc(hostLinks(t, path), func(n string) bool { return n == "lo" })
				slices.Sort(names)
				return names
			},
		}
	})
	require.True(t, true)
}
