package testenv

import (
	"os"
	"os/exec"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestStartOVS starts a private Open vSwitch, checks that its integration
// bridge uses the userspace datapath and that its device is in the private
// namespace, then stops it and checks that nothing is left.
func TestStartOVS(t *testing.T) {
	o := StartOVS(t)
	assert.Equal(t, "netdev", o.MustVsctl(t, "get", "Bridge", o.Bridge, "datapath_type"))
	out, err := exec.Command("ip", "-n", o.NetNSName, "link", "show", o.Bridge).CombinedOutput()
	require.NoError(t, err, "%s", out)

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
