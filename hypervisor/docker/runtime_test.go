package docker

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/moby/moby/client"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dockervisor/dockervisor/hypervisor"
	"github.com/dockervisor/dockervisor/internal/testenv"
)

// newEnvOn is newEnv on private engine eng (one of MustHaveEngines), with
// the engine's busybox image.
func newEnvOn(t *testing.T, eng *testenv.Engine, opts ...Option) *env {
	t.Helper()
	return newEnvWith(t, eng.Client, testenv.EngineBusybox, append([]Option{WithDockerHost(eng.Socket)}, opts...)...)
}

// TestRuntimeOption: WithRuntime runs every instance of the Driver,
// including one Rebuild recreates, under the runtime it names; a runtime
// the engine does not have is refused before anything is made.
func TestRuntimeOption(t *testing.T) {
	eng := testenv.MustHaveEngines(t)[0]
	ctx := t.Context()
	info, err := eng.Client.Info(ctx, client.InfoOptions{})
	require.NoError(t, err)
	require.Contains(t, info.Info.Runtimes, testenv.AliasRuntime, "the test engines register runc a second time")

	e := newEnvOn(t, eng, WithRuntime(testenv.AliasRuntime))
	e.spawn(e.spec("rt"))
	check := func(when string) {
		t.Helper()
		c := e.inspect("rt")
		assert.Equal(t, testenv.AliasRuntime, c.HostConfig.Runtime, when)
		assert.Equal(t, "running", string(c.State.Status), when)
		calls, err := testenv.AliasRuntimeCalls()
		require.NoError(t, err)
		assert.Regexp(t, `(?m)^.*\bcreate\b.*\b`+c.ID+`$`, calls, "%s: the alias's binary created the container", when)
	}
	check("spawned")
	require.NoError(t, e.drv.Rebuild(ctx, "rt", e.image))
	check("rebuilt")
	require.NoError(t, e.drv.Destroy(ctx, "rt"))
	e.requireGone("rt")

	// A Driver without the option leaves the engine's default.
	plain := newEnvOn(t, eng)
	plain.spawn(plain.spec("plain"))
	c := plain.inspect("plain")
	assert.Equal(t, info.Info.DefaultRuntime, c.HostConfig.Runtime)
	calls, err := testenv.AliasRuntimeCalls()
	require.NoError(t, err)
	assert.NotContains(t, calls, c.ID, "the default runtime is not the alias")

	bad := newEnvOn(t, eng, WithRuntime("dockervisor-no-such-runtime"))
	_, err = bad.drv.Spawn(ctx, bad.spec("bad"))
	require.ErrorIs(t, err, hypervisor.ErrNotSupported)
	assert.ErrorContains(t, err, `no OCI runtime "dockervisor-no-such-runtime"`)
	assert.ErrorContains(t, err, testenv.AliasRuntime, "the error names the runtimes the engine has")
	bad.requireGone("bad")
	list, err := bad.drv.List(ctx, hypervisor.ListOptions{})
	require.NoError(t, err)
	assert.Empty(t, list)

	for _, name := range []string{"", "has space", "-dash", "a/b"} {
		_, err := New(WithRuntime(name))
		assert.ErrorIs(t, err, hypervisor.ErrInvalidArgument, "%q", name)
	}
}

// TestOSInstanceCrun: an OS instance boots under crun (WithRuntime) as it
// does under the engine's default runtime: to running, with its limits
// (read where crun put them, and out of the instance's reach), its
// statistics, pause and an orderly power cycle. The machine's engine has crun
// registered where crun can run (scripts/setup.sh registers it; the
// kernel lane's engine has it). On a host with hybrid cgroups crun
// refuses every container: there the test checks, on a private engine
// that registers crun, that the Spawn fails with crun's reason and
// leaves nothing behind.
func TestOSInstanceCrun(t *testing.T) {
	ctx := t.Context()
	if testenv.CgroupHybrid() {
		eng := testenv.MustHaveEngines(t)[0]
		info, err := eng.Client.Info(ctx, client.InfoOptions{})
		require.NoError(t, err)
		if _, ok := info.Info.Runtimes["crun"]; !ok {
			testenv.Missing(t, "crun is not installed")
		}
		e := newEnvOn(t, eng, WithRuntime("crun"))
		_, err = e.drv.Spawn(ctx, e.spec("crun"))
		require.Error(t, err)
		t.Logf("spawn under crun: %v", err)
		assert.ErrorContains(t, err, "hybrid", "crun's own reason")
		e.requireGone("crun")
		return
	}
	cli := testenv.MustHaveDocker(t)
	info, err := cli.Info(ctx, client.InfoOptions{})
	require.NoError(t, err)
	if _, ok := info.Info.Runtimes["crun"]; !ok {
		testenv.Missing(t, "the engine has no \"crun\" runtime (it has %v)", info.Info.Runtimes)
	}
	e := newOSEnv(t, WithRuntime("crun"))
	// The image with cloud-init disabled: the runtime is the subject,
	// not boot data (cloud-init's stages are most of a boot under the
	// lane's emulation).
	e.image = e.derivedOSImage(noCloudInit)
	e.spawn(e.osSpec("crun"))
	st, err := e.waitBooted("crun", hypervisor.WaitBootOptions{})
	require.NoError(t, err)
	assert.Equal(t, hypervisor.SystemRunning, st.System)
	c := e.inspect("crun")
	assert.Equal(t, "crun", c.HostConfig.Runtime)
	want := wantLimits(2, 0, 256)
	e.requireLimitsHold("crun", want)
	if testenv.CgroupV2() && testenv.DefaultCgroupDriver() == testenv.CgroupDriverSystemd {
		// crun puts the container below the engine's scope, and the
		// Driver reads it there.
		dir, ok := runtimeCgroup(filepath.Join("/sys/fs/cgroup", containerCgroup(t, c.State.Pid, c.ID)[""]), c.ID)
		assert.True(t, ok)
		assert.Equal(t, "container", filepath.Base(dir), "crun's sub-cgroup")
		// The scope is where the instance weighs against the others:
		// crun has systemd give it the flavor's CPU weight (the memory
		// limit is on the sub-cgroup, which holds every process).
		assert.Equal(t, want.CPUWeight, readCgroupInt(t, filepath.Join(filepath.Dir(dir), "cpu.weight")), "the engine's scope")
	}
	all, err := e.drv.AllInstanceStats(ctx)
	require.NoError(t, err)
	require.Len(t, all, 1)
	assert.Equal(t, uint64(256<<20), all[0].MemoryLimitBytes, "the limit where crun set it")
	assert.Positive(t, all[0].MemoryBytes)

	require.NoError(t, e.drv.Pause(ctx, "crun"))
	assert.Equal(t, hypervisor.StatePaused, e.state("crun"))
	r := e.drv.core.hosts.cgroups(ctx, e.drv.api, c.ID)
	require.NotNil(t, r, "the Driver reads the instance's cgroups")
	frozen, err := r.frozen(c.ID)
	require.NoError(t, err)
	assert.True(t, frozen, "the kernel's freezer, where crun froze it")
	assert.False(t, e.drv.pauseDisagrees(ctx, e.drv.api, e.inspect("crun")))
	require.NoError(t, e.drv.Unpause(ctx, "crun"))
	assert.Equal(t, hypervisor.StateRunning, e.state("crun"))

	require.NoError(t, e.drv.PowerOff(ctx, "crun", hypervisor.StopOptions{Timeout: shutdownTimeout}))
	st, err = e.drv.OSStatus(ctx, "crun")
	require.NoError(t, err)
	assert.True(t, st.LastShutdown.Orderly, "%+v", st.LastShutdown)
	require.NoError(t, e.drv.PowerOn(ctx, "crun"))
	_, err = e.waitBooted("crun", hypervisor.WaitBootOptions{})
	require.NoError(t, err)
	assert.Equal(t, want, readKernelLimits(t, e.inspect("crun")), "after a power cycle")
	require.NoError(t, e.drv.Destroy(ctx, "crun"))
	e.requireGone("crun")
}

// readCgroupInt reads a cgroup file holding one integer.
func readCgroupInt(t *testing.T, path string) int64 {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	v, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	require.NoError(t, err, path)
	return v
}
