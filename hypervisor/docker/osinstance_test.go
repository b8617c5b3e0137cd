package docker

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dockervisor/dockervisor/hypervisor"
	"github.com/dockervisor/dockervisor/internal/testenv"
	"github.com/dockervisor/dockervisor/network"
)

// bootTimeout bounds a boot in the tests; a boot takes a few seconds here.
const bootTimeout = 2 * time.Minute

// newOSEnv is newEnv with the shared OS image (Debian with systemd,
// cloud-init and openssh-server, built once per machine by package
// osimage) as e.image.
func newOSEnv(t *testing.T, opts ...Option) *env {
	t.Helper()
	img := testenv.OSImage(t)
	e := newEnv(t, opts...)
	e.image = img.Ref
	return e
}

// osSpec is an OS instance's spec: no command (the image's init), the
// image's label selecting the OS boot.
func (e *env) osSpec(id string) hypervisor.InstanceSpec {
	return hypervisor.InstanceSpec{ID: id, Name: "os-" + id, Image: e.image, VCPUs: 2, MemoryMB: 256}
}

func (e *env) waitBooted(id string, opts hypervisor.WaitBootOptions) (hypervisor.OSStatus, error) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(e.t.Context(), bootTimeout)
	defer cancel()
	return e.drv.WaitBooted(ctx, id, opts)
}

func (e *env) console(id string) string {
	e.t.Helper()
	out, err := e.drv.ConsoleOutput(e.t.Context(), id, hypervisor.ConsoleOptions{})
	require.NoError(e.t, err)
	return string(out)
}

// derivedOSImage commits the shared OS image with files added (path →
// content; a "->target" content makes a symbolic link) as a new image,
// removed when the test ends.
func (e *env) derivedOSImage(files map[string]string) string {
	e.t.Helper()
	ctx := e.t.Context()
	c, err := e.cli.ContainerCreate(ctx, client.ContainerCreateOptions{Config: &container.Config{Image: e.image}})
	require.NoError(e.t, err)
	defer e.cli.ContainerRemove(context.WithoutCancel(ctx), c.ID, client.ContainerRemoveOptions{Force: true})
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for p, data := range files {
		p = strings.TrimPrefix(p, "/")
		if target, ok := strings.CutPrefix(data, "->"); ok {
			require.NoError(e.t, tw.WriteHeader(&tar.Header{Name: p, Typeflag: tar.TypeSymlink, Linkname: target, Mode: 0o777}))
			continue
		}
		require.NoError(e.t, tw.WriteHeader(&tar.Header{Name: p, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(data))}))
		_, err := tw.Write([]byte(data))
		require.NoError(e.t, err)
	}
	require.NoError(e.t, tw.Close())
	_, err = e.cli.CopyToContainer(ctx, c.ID, client.CopyToContainerOptions{DestinationPath: "/", Content: &buf})
	require.NoError(e.t, err)
	ref := "dockervisor-test/os-derived:" + testenv.UniqueName("t")
	_, err = e.cli.ContainerCommit(ctx, c.ID, client.ContainerCommitOptions{Reference: ref})
	require.NoError(e.t, err)
	testenv.RemoveImageOnCleanup(e.t, e.cli, ref)
	return ref
}

// requireGone checks that nothing of instance id is left: no container,
// no state record, no config drive.
func (e *env) requireGone(id string) {
	e.t.Helper()
	assert.Equal(e.t, 0, e.containersNamed(e.drv.containerName(id)), "container left behind")
	_, err := os.Stat(e.recordPath(id))
	assert.ErrorIs(e.t, err, os.ErrNotExist, "state record left behind")
	_, err = os.Stat(e.drv.state.configDriveDir(id))
	assert.ErrorIs(e.t, err, os.ErrNotExist, "config drive left behind")
}

// TestOSInstanceBoots: the image's label makes an OS instance; systemd
// boots as PID 1 in an unprivileged container without host namespaces,
// reaches running with no failed units, with the flavor's limits in the
// kernel, the spec's hostname, and its boot on the console.
func TestOSInstanceBoots(t *testing.T) {
	e := newOSEnv(t)
	spec := e.osSpec("boot")
	spec.Labels = map[string]string{"tenant": "t1"}
	inst := e.spawn(spec)
	assert.Equal(t, hypervisor.BootOS, inst.Boot)
	assert.True(t, e.drv.Capabilities().OSInstances)

	st, err := e.waitBooted("boot", hypervisor.WaitBootOptions{})
	require.NoError(t, err, "console:\n%s", e.console("boot"))
	assert.Equal(t, hypervisor.SystemRunning, st.System)
	assert.Empty(t, st.FailedUnits)
	assert.Equal(t, "running\n", e.execOut("boot", "systemctl", "is-system-running"))
	assert.Equal(t, "systemd\n", e.execOut("boot", "cat", "/proc/1/comm"))
	assert.Equal(t, "os-boot\n", e.execOut("boot", "hostname"))
	assert.Equal(t, "docker\n", e.execOut("boot", "systemd-detect-virt", "--container"))

	c := e.inspect("boot")
	assert.False(t, c.HostConfig.Privileged)
	// The one capability added: the OS configures its own interfaces.
	assert.Equal(t, []string{"CAP_NET_ADMIN"}, []string(c.HostConfig.CapAdd))
	assert.Equal(t, container.NetworkMode("none"), c.HostConfig.NetworkMode)
	assert.False(t, c.HostConfig.PidMode.IsHost())
	assert.False(t, c.HostConfig.IpcMode.IsHost())
	assert.False(t, c.HostConfig.UTSMode.IsHost())
	if v, _ := e.drv.cgroupVersion(t.Context(), e.drv.api); v == "2" {
		assert.Equal(t, container.CgroupnsModePrivate, c.HostConfig.CgroupnsMode)
	}
	assert.Equal(t, "SIGRTMIN+3", c.Config.StopSignal)
	assert.Contains(t, c.Config.Env, "container=docker")
	assert.Contains(t, c.Config.Env, "product_name=OpenStack Nova")
	assert.Contains(t, c.Config.Env, "DOCKERVISOR_VIFS=")
	assert.Contains(t, c.HostConfig.Tmpfs, "/run")
	assert.Contains(t, c.HostConfig.Tmpfs, "/run/lock")
	assert.Equal(t, "t1", c.Config.Labels["tenant"])
	mounts := e.execOut("boot", "findmnt", "-n", "-o", "FSTYPE", "/run")
	assert.Equal(t, "tmpfs\n", mounts)

	// The limits hold: the instance's processes cannot leave their
	// cgroup for the host's root cgroup of a controller.
	var escOut, escErr bytes.Buffer
	_, err = e.drv.Exec(t.Context(), "boot", hypervisor.ExecSpec{
		Args:   []string{"sh", "-c", "for c in memory cpu pids; do echo $$ > /sys/fs/cgroup/$c/cgroup.procs && echo escaped $c; done; cat /proc/self/cgroup"},
		Stdout: &escOut, Stderr: &escErr,
	})
	require.NoError(t, err)
	assert.NotContains(t, escOut.String(), "escaped", "stderr: %s", escErr.String())
	assert.Contains(t, escErr.String(), "Read-only file system")

	lim := readKernelLimits(t, c.State.Pid)
	assert.Equal(t, int64(256<<20), lim.MemoryBytes)
	assert.Equal(t, int64(2*cpuSharesPerVCPU), lim.CPUShares)

	con := e.console("boot")
	assert.Contains(t, con, "Welcome to")
	assert.Contains(t, con, "Reached target")

	// An agent restart sees an OS instance.
	info, err := e.newDriver().Info(t.Context(), "boot")
	require.NoError(t, err)
	assert.Equal(t, hypervisor.BootOS, info.Boot)

	// A rebuild boots the OS afresh, with the same limits.
	require.NoError(t, e.drv.Rebuild(t.Context(), "boot", e.image))
	_, err = e.waitBooted("boot", hypervisor.WaitBootOptions{})
	require.NoError(t, err)
	c2 := e.inspect("boot")
	assert.NotEqual(t, c.ID, c2.ID)
	assert.Equal(t, "SIGRTMIN+3", c2.Config.StopSignal)
	assert.Equal(t, lim, readKernelLimits(t, c2.State.Pid))
	info, err = e.drv.Info(t.Context(), "boot")
	require.NoError(t, err)
	assert.Equal(t, hypervisor.BootOS, info.Boot)

	require.NoError(t, e.drv.Destroy(t.Context(), "boot"))
	e.requireGone("boot")
}

// TestOSInstanceCloudInit: cloud-init inside reads the config drive:
// status done from the ConfigDrive datasource, the user-data ran, the
// keys are the default user's, and cloud-init query returns the
// instance's metadata.
func TestOSInstanceCloudInit(t *testing.T) {
	e := newOSEnv(t)
	spec := e.osSpec("ci")
	key := sshKey(t)
	spec.SSHKeys = []hypervisor.SSHKey{{Name: "k1", Data: key}}
	spec.Metadata = map[string]string{"role": "web"}
	spec.UserData = []byte(`#cloud-config
locale: C.UTF-8
write_files:
  - path: /etc/dockervisor-test
    content: written by cloud-init
runcmd:
  - [ sh, -c, "echo ran $(hostname) > /run/user-data-ran" ]
`)
	e.spawn(spec)
	st, err := e.waitBooted("ci", hypervisor.WaitBootOptions{CloudInit: true})
	require.NoError(t, err, "console:\n%s", e.console("ci"))
	assert.Equal(t, "done", st.CloudInit.Status)
	assert.Equal(t, "configdrive", st.CloudInit.Datasource)
	assert.Empty(t, st.CloudInit.Errors)
	assert.Equal(t, hypervisor.SystemRunning, st.System)
	assert.Empty(t, st.FailedUnits)

	// cloud-init's own status command agrees with the driver's reading.
	var own struct {
		Status     string `json:"status"`
		Datasource string `json:"datasource"`
	}
	require.NoError(t, json.Unmarshal([]byte(e.execOut("ci", "cloud-init", "status", "--format", "json")), &own))
	assert.Equal(t, st.CloudInit.Status, own.Status)
	assert.Equal(t, st.CloudInit.Datasource, own.Datasource)

	assert.Equal(t, "ran os-ci\n", e.execOut("ci", "cat", "/run/user-data-ran"))
	assert.Equal(t, "written by cloud-init", strings.TrimSpace(e.execOut("ci", "cat", "/etc/dockervisor-test")))
	keys := e.execOut("ci", "cat", "/home/debian/.ssh/authorized_keys")
	assert.Contains(t, keys, key)
	assert.Contains(t, e.execOut("ci", "stat", "-c", "%U %a", "/home/debian/.ssh/authorized_keys"), "debian 600")

	var q struct {
		InstanceID string `json:"instance_id"`
		Hostname   string `json:"local_hostname"`
		Platform   string `json:"platform"`
	}
	require.NoError(t, json.Unmarshal([]byte(e.execOut("ci", "cloud-init", "query", "v1")), &q))
	assert.Equal(t, "ci", q.InstanceID)
	assert.Equal(t, "os-ci", q.Hostname)
	assert.Equal(t, "configdrive", q.Platform)
	assert.Equal(t, "web", strings.TrimSpace(e.execOut("ci", "cloud-init", "query", "ds.meta_data.meta.role")))

	require.NoError(t, e.drv.Destroy(t.Context(), "ci"))
	e.requireGone("ci")
}

// TestOSInstancePowerCycle: power-off is an orderly shutdown (seen in the
// console and in the exit), soft reboot is a shutdown and a fresh boot,
// and the limits hold in the kernel after each.
func TestOSInstancePowerCycle(t *testing.T) {
	e := newOSEnv(t)
	e.spawn(e.osSpec("pc"))
	_, err := e.waitBooted("pc", hypervisor.WaitBootOptions{})
	require.NoError(t, err)
	want := kernelLimits{MemoryBytes: 256 << 20, CPUShares: 2 * cpuSharesPerVCPU, CFSQuota: -1}

	require.NoError(t, e.drv.PowerOff(t.Context(), "pc", hypervisor.StopOptions{Timeout: 30 * time.Second}))
	assert.Equal(t, hypervisor.StateShutdown, e.state("pc"))
	st, err := e.drv.OSStatus(t.Context(), "pc")
	require.NoError(t, err)
	assert.Equal(t, hypervisor.SystemOffline, st.System)
	assert.True(t, st.LastShutdown.Orderly, "%+v", st.LastShutdown)
	assert.False(t, st.LastShutdown.TimedOut)
	assert.Equal(t, 0, st.LastShutdown.ExitCode)
	assert.Equal(t, 0, e.inspect("pc").State.ExitCode)
	_, err = e.drv.WaitBooted(t.Context(), "pc", hypervisor.WaitBootOptions{})
	require.ErrorIs(t, err, hypervisor.ErrInvalidState, "no boot to wait for while shut down")
	con := e.console("pc")
	assert.Contains(t, con, "Reached target")
	assert.Contains(t, con, "System Halt")
	assert.Contains(t, con, "Exiting container")

	require.NoError(t, e.drv.PowerOn(t.Context(), "pc"))
	_, err = e.waitBooted("pc", hypervisor.WaitBootOptions{})
	require.NoError(t, err)
	assert.Equal(t, want, readKernelLimits(t, e.inspect("pc").State.Pid), "after power-off and power-on")

	before := e.inspect("pc").State.Pid
	require.NoError(t, e.drv.Reboot(t.Context(), "pc", hypervisor.RebootOptions{Timeout: 30 * time.Second}))
	st, err = e.waitBooted("pc", hypervisor.WaitBootOptions{})
	require.NoError(t, err)
	assert.True(t, st.LastShutdown.Orderly, "soft reboot shuts down in order")
	c := e.inspect("pc")
	assert.NotEqual(t, before, c.State.Pid, "a fresh boot")
	assert.Equal(t, want, readKernelLimits(t, c.State.Pid), "after a soft reboot")
	assert.Equal(t, 2, strings.Count(e.console("pc"), "Exiting container"), "two shutdowns on the console")

	// A hard reboot kills: not orderly, and reported so.
	require.NoError(t, e.drv.Reboot(t.Context(), "pc", hypervisor.RebootOptions{Hard: true}))
	st, err = e.waitBooted("pc", hypervisor.WaitBootOptions{})
	require.NoError(t, err)
	assert.False(t, st.LastShutdown.Orderly)
	assert.Equal(t, 137, st.LastShutdown.ExitCode)

	require.NoError(t, e.drv.Destroy(t.Context(), "pc"))
	e.requireGone("pc")
}

// TestOSInstanceNoInit: an OS boot of an image without an init fails with
// ErrNoInit and leaves nothing behind.
func TestOSInstanceNoInit(t *testing.T) {
	e := newEnv(t) // busybox: no /sbin/init
	spec := e.spec("noinit")
	spec.Command = nil
	spec.Boot = hypervisor.BootOS
	_, err := e.drv.Spawn(t.Context(), spec)
	require.ErrorIs(t, err, hypervisor.ErrNoInit)
	_, ok := errors.AsType[*hypervisor.OpError](err)
	assert.True(t, ok)
	e.requireGone("noinit")

	spec.Command = []string{"/bin"} // a directory
	_, err = e.drv.Spawn(t.Context(), spec)
	require.ErrorIs(t, err, hypervisor.ErrNoInit)
	e.requireGone("noinit")

	// An application instance of the same image is not affected.
	app := e.spec("noinit")
	app.Boot = hypervisor.BootApp
	inst := e.spawn(app)
	assert.Empty(t, inst.Boot)
	_, err = e.drv.OSStatus(t.Context(), "noinit")
	assert.ErrorIs(t, err, hypervisor.ErrNotSupported)
}

// TestOSInstanceFaults: a unit that fails leaves the system degraded
// (WaitBooted's ErrDegraded, the unit named, the failure on the console);
// a shutdown that hangs is killed after the timeout and reported; failing
// user-data is cloud-init's error; each instance is destroyed without a
// trace.
func TestOSInstanceFaults(t *testing.T) {
	e := newOSEnv(t)
	wants := "/etc/systemd/system/multi-user.target.wants/"
	e.image = e.derivedOSImage(map[string]string{
		"/etc/systemd/system/dv-broken.service": "[Unit]\nDescription=A unit that fails\n[Service]\nType=oneshot\nExecStart=/bin/false\n[Install]\nWantedBy=multi-user.target\n",
		wants + "dv-broken.service":             "->/etc/systemd/system/dv-broken.service",
		"/etc/systemd/system/dv-hang.service":   "[Unit]\nDescription=A unit whose stop hangs\n[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=/bin/true\nExecStop=/bin/sleep 3600\nTimeoutStopSec=infinity\n[Install]\nWantedBy=multi-user.target\n",
		wants + "dv-hang.service":               "->/etc/systemd/system/dv-hang.service",
	})

	t.Run("DegradedAndHungShutdown", func(t *testing.T) {
		e.spawn(e.osSpec("bad"))
		st, err := e.waitBooted("bad", hypervisor.WaitBootOptions{})
		require.ErrorIs(t, err, hypervisor.ErrDegraded)
		assert.Contains(t, err.Error(), "dv-broken.service")
		assert.Equal(t, hypervisor.SystemDegraded, st.System)
		assert.Equal(t, []string{"dv-broken.service"}, st.FailedUnits)
		con := e.console("bad")
		assert.Contains(t, con, "Failed to start")
		// The journal's warning, forwarded to the console.
		assert.Contains(t, con, "dv-broken.service: Failed with result 'exit-code'")

		start := time.Now()
		require.NoError(t, e.drv.PowerOff(t.Context(), "bad", hypervisor.StopOptions{Timeout: 2 * time.Second}))
		took := time.Since(start)
		assert.Equal(t, hypervisor.StateShutdown, e.state("bad"))
		st, err = e.drv.OSStatus(t.Context(), "bad")
		require.NoError(t, err)
		assert.True(t, st.LastShutdown.TimedOut, "%+v", st.LastShutdown)
		assert.False(t, st.LastShutdown.Orderly)
		assert.Equal(t, 137, st.LastShutdown.ExitCode)
		assert.GreaterOrEqual(t, took, 2*time.Second, "killed after the timeout, not before")
		con = e.console("bad")
		assert.Contains(t, con, "Stopping")
		assert.Contains(t, con, "dv-hang.service")
		assert.NotContains(t, con, "Exiting container", "the shutdown never finished")

		require.NoError(t, e.drv.Destroy(t.Context(), "bad"))
		e.requireGone("bad")
	})

	t.Run("UserDataFails", func(t *testing.T) {
		spec := e.osSpec("udfail")
		spec.Image = testenv.OSImage(t).Ref
		spec.UserData = []byte("#!/bin/sh\necho user-data about to fail\nexit 3\n")
		e.spawn(spec)
		st, err := e.waitBooted("udfail", hypervisor.WaitBootOptions{CloudInit: true})
		require.ErrorIs(t, err, hypervisor.ErrCloudInit)
		assert.Equal(t, "error", st.CloudInit.Status)
		assert.NotEmpty(t, st.CloudInit.Errors)
		assert.Contains(t, e.console("udfail"), "user-data about to fail")
		require.NoError(t, e.drv.Destroy(t.Context(), "udfail"))
		e.requireGone("udfail")
	})
}

// TestOSConfig checks the create-time variation on both cgroup versions
// (this host has one; the other is checked here only).
func TestOSConfig(t *testing.T) {
	for _, v := range []string{"1", "2"} {
		cs := containerSpec{spec: hypervisor.InstanceSpec{ID: "x", Env: map[string]string{"A": "b", "product_name": "mine"},
			VIFs: []network.VIF{{ID: "p1"}, {ID: "p2"}}}, os: true}
		cfg := &container.Config{Cmd: []string{"ignored"}, Env: cs.env()}
		hc := &container.HostConfig{}
		cs.osConfig(cfg, hc, v)
		assert.Equal(t, []string{"/sbin/init"}, []string(cfg.Entrypoint))
		assert.Empty(t, cfg.Cmd)
		// The spec's own variables win.
		assert.Equal(t, []string{"A=b", "DOCKERVISOR_VIFS=eth0,eth1", "container=docker", "product_name=mine"}, cfg.Env)
		assert.Equal(t, []string{"NET_ADMIN"}, []string(hc.CapAdd))
		assert.Equal(t, "SIGRTMIN+3", cfg.StopSignal)
		assert.True(t, cfg.Tty)
		assert.False(t, hc.Privileged)
		assert.Len(t, hc.Tmpfs, 2)
		if v == "2" {
			assert.Equal(t, container.CgroupnsModePrivate, hc.CgroupnsMode)
			assert.Empty(t, hc.Mounts)
		} else {
			assert.Empty(t, hc.CgroupnsMode)
			require.Len(t, hc.Mounts, 1)
			assert.Equal(t, "/sys/fs/cgroup/systemd", hc.Mounts[0].Source)
			assert.Equal(t, "/sys/fs/cgroup/systemd", hc.Mounts[0].Target)
		}
	}
	cs := containerSpec{spec: hypervisor.InstanceSpec{Command: []string{"/lib/systemd/systemd", "--log-level=debug"}}, os: true}
	assert.Equal(t, []string{"/lib/systemd/systemd", "--log-level=debug"}, cs.initCommand())
}

func TestParseOSStatus(t *testing.T) {
	var st hypervisor.OSStatus
	parseOSStatus("degraded\n@@\ndv-broken.service loaded failed failed A unit that fails\nx.service loaded failed failed X\n@@\ninstalled\n@@\n"+
		`{"v1": {"datasource": "DataSourceConfigDrive [net,ver=2][source=/var/lib/cloud/seed/config_drive]", "init": {"errors": []}, "modules-final": {"errors": ["('scripts_user', RuntimeError('runparts: 1 failures'))"]}, "stage": null}}`+
		"\n@@\n"+`{"v1": {"datasource": "DataSourceConfigDrive [net,ver=2][source=/var/lib/cloud/seed/config_drive]", "errors": ["('scripts_user', RuntimeError('runparts: 1 failures'))"]}}`, &st)
	assert.Equal(t, "degraded", st.System)
	assert.Equal(t, []string{"dv-broken.service", "x.service"}, st.FailedUnits)
	assert.Equal(t, "error", st.CloudInit.Status)
	assert.Equal(t, "configdrive", st.CloudInit.Datasource)
	assert.Len(t, st.CloudInit.Errors, 1)

	for _, c := range []struct {
		out, want string
	}{
		{"starting\n@@\n@@\n", ""},
		{"starting\n@@\n@@\ninstalled\n@@\n@@\n", "not run"},
		{"starting\n@@\n@@\ndisabled\n", "disabled"},
		{"starting\n@@\n@@\ninstalled\n@@\n{\"v1\": {\"datasource\": null, \"init-local\": {\"errors\": []}}}\n@@\n", "running"},
		{"running\n@@\n@@\ninstalled\n@@\n{\"v1\": {\"datasource\": \"DataSourceNone\"}}\n@@\n{\"v1\": {\"datasource\": \"DataSourceNone\", \"errors\": []}}\n", "done"},
	} {
		st = hypervisor.OSStatus{}
		parseOSStatus(c.out, &st)
		assert.Equal(t, c.want, st.CloudInit.Status, "%q", c.out)
		assert.Empty(t, st.CloudInit.Errors)
	}

	for _, c := range []struct {
		st   hypervisor.OSStatus
		ci   bool
		done bool
		err  error
	}{
		{hypervisor.OSStatus{System: "starting"}, false, false, nil},
		{hypervisor.OSStatus{System: ""}, false, false, nil},
		{hypervisor.OSStatus{System: "running"}, false, true, nil},
		{hypervisor.OSStatus{System: "degraded"}, false, true, hypervisor.ErrDegraded},
		{hypervisor.OSStatus{System: "running", CloudInit: hypervisor.CloudInitStatus{Status: "running"}}, true, false, nil},
		{hypervisor.OSStatus{System: "running", CloudInit: hypervisor.CloudInitStatus{Status: "done"}}, true, true, nil},
		{hypervisor.OSStatus{System: "degraded", CloudInit: hypervisor.CloudInitStatus{Status: "error"}}, true, true, hypervisor.ErrCloudInit},
		{hypervisor.OSStatus{System: "running"}, true, true, hypervisor.ErrNotSupported},
	} {
		done, err := bootDone(c.st, hypervisor.WaitBootOptions{CloudInit: c.ci})
		assert.Equal(t, c.done, done, "%+v", c)
		if c.err == nil {
			assert.NoError(t, err)
		} else {
			assert.ErrorIs(t, err, c.err)
		}
	}
}
