package ovsrun_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dockervisor/dockervisor/internal/testenv"
	"github.com/dockervisor/dockervisor/network/ovs/ovsrun"
)

// needOVS skips (or fails in CI) without root and Open vSwitch.
func needOVS(t *testing.T) {
	t.Helper()
	testenv.MustHaveRoot(t)
	if _, err := exec.LookPath("ovs-vswitchd"); err != nil {
		testenv.Missing(t, "Open vSwitch: %v", err)
	}
	if _, err := os.Stat(ovsrun.Schema); err != nil {
		testenv.Missing(t, "Open vSwitch: %v", err)
	}
}

func pids(t *testing.T, s *ovsrun.Switch) []int {
	t.Helper()
	db, vsd := s.PIDs()
	require.NotZero(t, db)
	require.NotZero(t, vsd)
	return []int{db, vsd}
}

func requireGone(t *testing.T, s *ovsrun.Switch, pids ...int) {
	t.Helper()
	for _, pid := range pids {
		// Gone, or a zombie that init has not reaped yet (a detached
		// daemon is not our child).
		stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err == nil {
			end := strings.LastIndexByte(string(stat), ')')
			assert.True(t, end > 0 && end+2 < len(stat) && stat[end+2] == 'Z', "daemon pid %d still runs: %s", pid, stat)
		}
	}
	assert.NoDirExists(t, s.Dir)
	if s.NetNS != "" {
		assert.NoFileExists(t, s.NetNS)
	}
}

// TestStartStop: a switch of child daemons in its own namespace, with a
// working bridge on the userspace datapath whose device is in that
// namespace; Stop (twice) leaves no daemon, namespace or directory.
func TestStartStop(t *testing.T) {
	needOVS(t)
	s, err := ovsrun.Start(t.Context(), ovsrun.Options{NetNS: testenv.UniqueName("dvrun")})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Stop(t.Context()) })
	require.NoError(t, s.Alive())
	assert.True(t, s.Running(t.Context()))
	require.NoError(t, s.AddBridge(t.Context(), "br-int"))
	require.NoError(t, s.AddBridge(t.Context(), "br-int"), "idempotent")
	dp, err := s.Vsctl(t.Context(), "get", "Bridge", "br-int", "datapath_type")
	require.NoError(t, err)
	assert.Equal(t, ovsrun.DatapathNetdev, dp)
	out, err := exec.Command("ip", "-n", s.NetNSName, "link", "show", "br-int").CombinedOutput()
	require.NoError(t, err, "%s", out)

	ps := pids(t, s)
	require.NoError(t, s.Stop(t.Context()))
	require.NoError(t, s.Stop(t.Context()), "idempotent")
	requireGone(t, s, ps...)
}

// TestKillDB: after KillDB ovs-vsctl fails, Alive says so and Stop still
// cleans up.
func TestKillDB(t *testing.T) {
	needOVS(t)
	s, err := ovsrun.Start(t.Context(), ovsrun.Options{NetNS: testenv.UniqueName("dvrun")})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Stop(t.Context()) })
	ps := pids(t, s)
	s.KillDB()
	_, err = s.Vsctl(t.Context(), "--timeout=2", "show")
	require.Error(t, err)
	assert.ErrorContains(t, s.Alive(), "ovsdb-server")
	require.NoError(t, s.Stop(t.Context()))
	requireGone(t, s, ps...)
}

// TestDetached: a detached switch outlives its handle; Open finds it by
// its directory, as another process would, and Stop ends it by its pid
// files, deleting the namespace Start made.
func TestDetached(t *testing.T) {
	needOVS(t)
	dir := filepath.Join(t.TempDir(), "sw")
	s, err := ovsrun.Start(t.Context(), ovsrun.Options{Dir: dir, NetNS: testenv.UniqueName("dvrun"), Detach: true})
	require.NoError(t, err)
	t.Cleanup(func() {
		if o, err := ovsrun.Open(dir); err == nil {
			_ = o.Stop(t.Context())
		}
	})
	ps := pids(t, s)

	o, err := ovsrun.Open(dir)
	require.NoError(t, err)
	assert.Equal(t, s.NetNS, o.NetNS)
	assert.Equal(t, s.DB, o.DB)
	assert.True(t, o.Running(t.Context()))
	require.NoError(t, o.AddBridge(t.Context(), "br-lab"))
	require.NoError(t, o.Stop(t.Context()))
	assert.False(t, o.Running(t.Context()))
	requireGone(t, o, ps...)
	_, err = ovsrun.Open(dir)
	assert.ErrorIs(t, err, os.ErrNotExist)
}

// TestExistingNamespaceStays: Stop deletes only a namespace Start made.
func TestExistingNamespaceStays(t *testing.T) {
	needOVS(t)
	ns := testenv.UniqueName("dvrun")
	out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput()
	require.NoError(t, err, "%s", out)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "delete", ns).Run() })
	s, err := ovsrun.Start(t.Context(), ovsrun.Options{NetNS: ns})
	require.NoError(t, err)
	require.NoError(t, s.Stop(t.Context()))
	assert.FileExists(t, "/run/netns/"+ns)
}

// TestDatapath: the datapath is a parameter; the kernel's is used as asked
// (where the kernel lacks it, AddBridge says so) and anything else is
// refused before anything starts.
func TestDatapath(t *testing.T) {
	_, err := ovsrun.Start(t.Context(), ovsrun.Options{Datapath: "dpdk"})
	require.ErrorContains(t, err, `datapath "dpdk"`)

	needOVS(t)
	s, err := ovsrun.Start(t.Context(), ovsrun.Options{NetNS: testenv.UniqueName("dvrun"), Datapath: ovsrun.DatapathSystem})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Stop(t.Context()) })
	assert.Equal(t, ovsrun.DatapathSystem, s.Datapath)
	if err := s.AddBridge(t.Context(), "br-sys"); err != nil {
		t.Logf("no kernel datapath here: %v", err)
	} else {
		dp, err := s.Vsctl(t.Context(), "get", "Bridge", "br-sys", "datapath_type")
		require.NoError(t, err)
		assert.Equal(t, ovsrun.DatapathSystem, dp)
	}
	require.NoError(t, s.Stop(t.Context()))
	requireGone(t, s)
}

// TestPickDatapath: the kernel datapath exactly where the kernel has the
// Open vSwitch module (the kernel lane), the userspace one elsewhere.
func TestPickDatapath(t *testing.T) {
	testenv.MustHaveRoot(t)
	dp, err := ovsrun.PickDatapath(t.Context())
	if testenv.HasKernelFeature(t, testenv.FeatureOVSKernelDatapath) {
		require.NoError(t, err)
		assert.Equal(t, ovsrun.DatapathSystem, dp, "the kernel has the Open vSwitch module")
	} else {
		assert.Equal(t, ovsrun.DatapathNetdev, dp, "no Open vSwitch module")
	}
}
