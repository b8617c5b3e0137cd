package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dockervisor/dockervisor/network/ovs/ovsrun"
)

// TestStartOVS starts a private Open vSwitch, checks that its integration
// bridge uses the kernel datapath where the kernel has one (the userspace
// datapath elsewhere) and that its device is in the private namespace,
// then stops it and checks that nothing is left.
func TestStartOVS(t *testing.T) {
	o := StartOVS(t)
	want := ovsrun.DatapathNetdev
	if HasKernelFeature(t, FeatureOVSKernelDatapath) {
		want = ovsrun.DatapathSystem
	}
	require.Equal(t, want, o.Datapath)
	assert.Equal(t, want, o.MustVsctl(t, "get", "Bridge", o.Bridge, "datapath_type"))
	out, err := exec.Command("ip", "-d", "-n", o.NetNSName, "link", "show", o.Bridge).CombinedOutput()
	require.NoError(t, err, "%s", out)
	dpif, err := exec.Command("ovs-appctl", "-t", filepath.Join(o.Dir, "ovs-vswitchd.ctl"), "dpif/show").CombinedOutput()
	require.NoError(t, err, "%s", dpif)
	if want == ovsrun.DatapathSystem {
		// The bridge is a kernel datapath device of the private namespace.
		assert.Contains(t, string(out), "openvswitch", "br-int is an internal port of the kernel datapath")
		assert.Contains(t, string(dpif), "system@ovs-system")
	} else {
		assert.Contains(t, string(dpif), "netdev@ovs-netdev")
	}

	db, vswitchd := o.PIDs()
	pids := []int{db, vswitchd}
	o.Stop()
	o.Stop() // idempotent
	for _, pid := range pids {
		_, err := os.Stat("/proc/" + strconv.Itoa(pid) + "/cmdline")
		assert.True(t, os.IsNotExist(err), "daemon pid %d still exists", pid)
	}
	_, err = os.Stat(o.NetNS)
	assert.True(t, os.IsNotExist(err), "namespace %s still exists", o.NetNS)
	_, err = os.Stat(o.Dir)
	assert.True(t, os.IsNotExist(err), "run dir %s still exists", o.Dir)
}

// TestOVSKillDB checks that after KillDB ovs-vsctl fails and Stop still
// cleans up.
func TestOVSKillDB(t *testing.T) {
	o := StartOVS(t)
	o.KillDB()
	_, err := o.Vsctl(t.Context(), "show")
	require.Error(t, err)
	o.Stop()
	_, err = os.Stat(o.NetNS)
	assert.True(t, os.IsNotExist(err), "namespace %s still exists", o.NetNS)
}
