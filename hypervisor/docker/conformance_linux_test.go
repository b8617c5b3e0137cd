package docker

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dockervisor/dockervisor/hypervisor/hypervisortest"
	"github.com/dockervisor/dockervisor/image/localdir"
	"github.com/dockervisor/dockervisor/internal/testenv"
	"github.com/dockervisor/dockervisor/network"
)

// TestConformance runs the backend-independent conformance suite against
// the real engine.
func TestConformance(t *testing.T) {
	cli := testenv.MustHaveDocker(t)
	img := testenv.BusyboxImage(t)
	hypervisortest.TestDriver(t, func(t *testing.T) hypervisortest.Harness {
		uniq := testenv.UniqueName("c")
		lab := newBridgeLab(t) // VIFs on a Linux bridge in a private host namespace
		snaps, err := localdir.New(t.TempDir())
		require.NoError(t, err)
		d, err := New(
			WithLabelPrefix("io.dockervisor."+uniq+"."),
			WithNamePrefix("dv-"+uniq+"-"),
			WithStateDir(t.TempDir()),
			WithStopTimeout(2*time.Second),
			WithVIFDriver(lab.drv),
			WithSnapshotStore(snaps),
		)
		require.NoError(t, err)
		return hypervisortest.Harness{
			Driver:    d,
			Image:     img,
			Command:   sleeper,
			Snapshots: snaps,
			Crash: func(t *testing.T, id string) {
				// Its process killed from the host: a crash.
				info, err := d.Info(t.Context(), id)
				require.NoError(t, err)
				crashGuest(t, cli, info.BackendID)
			},
			VIF: func(_ *testing.T, n int) network.VIF { return lab.vif(1, n+2) },
			ConsoleCommand: func(lines []string) []string {
				return append([]string{"sh", "-c", `for l in "$@"; do echo "$l"; done; trap 'exit 0' TERM; sleep 3600 & wait`, "sh"}, lines...)
			},
			Exec:               busyboxExecCommands(),
			ConsoleEchoCommand: consoleEcho,
		}
	})
}
