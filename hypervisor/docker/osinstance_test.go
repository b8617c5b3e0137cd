package docker

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dockervisor/dockervisor/hypervisor"
	"github.com/dockervisor/dockervisor/image/busybox"
	"github.com/dockervisor/dockervisor/internal/testenv"
	"github.com/dockervisor/dockervisor/network"
)

// bootTimeout bounds a boot in the tests. A boot takes a few seconds on a
// host, about 45 s in the kernel lane's emulated VM and minutes there when
// the machine under the VM is loaded; the bound only stops a boot that
// hangs.
const bootTimeout = 10 * time.Minute

// shutdownTimeout is the stop timeout of an orderly shutdown in the tests:
// the OS gets this long before it is killed (which the tests would see as
// a shutdown that was not orderly).
const shutdownTimeout = 2 * time.Minute

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

// bootSteps counts the steps WaitBooted shows the step hook: statuses
// read from the boot report and statuses asked from the instance.
type bootSteps struct {
	mu            sync.Mutex
	report, polls int
}

// countBootSteps sets the env's Driver's step hook to count WaitBooted's
// steps.
func (e *env) countBootSteps() *bootSteps {
	b := &bootSteps{}
	e.drv.stepHook = func(s string) {
		b.mu.Lock()
		defer b.mu.Unlock()
		switch s {
		case stepBootReport:
			b.report++
		case stepBootPoll:
			b.polls++
		}
	}
	return b
}

// take returns the counts so far and starts again from zero.
func (b *bootSteps) take() (report, polls int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	report, polls = b.report, b.polls
	b.report, b.polls = 0, 0
	return report, polls
}

// waitBootedReported is waitBooted for an image that reports the end of
// its boot on the console, and requires that the report is what the
// driver reads. The first wait may end on a backstop poll that saw the
// boot end before the report's unit printed it (that unit starts once the
// boot has finished, so a slow machine widens the window); once the report
// is on the console, a second wait must read it there and ask the
// instance nothing, and see the same end of the boot.
func (e *env) waitBootedReported(t *testing.T, id string, opts hypervisor.WaitBootOptions) (hypervisor.OSStatus, error) {
	t.Helper()
	steps := e.countBootSteps()
	first, firstErr := e.waitBooted(id, opts)
	var con string
	if !assert.Eventually(t, func() bool {
		out, err := e.drv.ConsoleOutput(t.Context(), id, hypervisor.ConsoleOptions{})
		con = string(out)
		return err == nil && strings.Contains(con, bootReportPrefix)
	}, bootTimeout, 100*time.Millisecond, "no boot report on the console") {
		// What the instance says of its report's unit.
		var out bytes.Buffer
		_, err := e.drv.Exec(t.Context(), id, hypervisor.ExecSpec{Args: []string{"sh", "-c",
			"systemctl status --no-pager dockervisor-boot-report.service; systemctl is-system-running; systemctl list-jobs --no-pager; ls -l /run/dockervisor /dev/console; ps -ef; journalctl -b --no-pager -n 200"},
			Stdout: &out, Stderr: &out})
		t.Fatalf("first wait: %+v, %v\nconsole:\n%s\ninstance (exec %v):\n%s", first, firstErr, con, err, out.String())
	}
	steps.take()
	st, err := e.waitBooted(id, opts)
	report, polls := steps.take()
	assert.Equal(t, 1, report, "the end of the boot is read from the image's report on the console:\n%s", con)
	assert.Zero(t, polls, "the instance was asked although its report is on the console")
	assert.Equal(t, first.System, st.System)
	assert.Equal(t, first.CloudInit.Status, st.CloudInit.Status)
	assert.Equal(t, firstErr == nil, err == nil, "first: %v, second: %v", firstErr, err)
	return st, err
}

func (e *env) console(id string) string {
	e.t.Helper()
	out, err := e.drv.ConsoleOutput(e.t.Context(), id, hypervisor.ConsoleOptions{})
	require.NoError(e.t, err)
	return string(out)
}

// noCloudInit is a file that, in a derived OS image, keeps cloud-init
// out of the boot (cloud-init's own switch: its generator leaves
// cloud-init.target out). Tests whose subject is not cloud-init use it:
// cloud-init's four stages are most of a boot's time (about 1.4 s of
// 2.1 s on this CI host, and so under the kernel lane's emulation too).
// TestOSInstanceBoots, TestOSInstanceCloudInit and the tests of boot
// data keep it.
var noCloudInit = map[string]string{"/etc/cloud/cloud-init.disabled": "disabled by the test: not its subject\n"}

// withFiles merges file maps for derivedOSImage.
func withFiles(ms ...map[string]string) map[string]string {
	out := map[string]string{}
	for _, m := range ms {
		maps.Copy(out, m)
	}
	return out
}

// derivedOSImage commits the shared OS image with files added (path →
// content; a "->target" content makes a symbolic link) and the
// Dockerfile-style changes as a new image, removed when the test ends.
func (e *env) derivedOSImage(files map[string]string, changes ...string) string {
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
	_, err = e.cli.ContainerCommit(ctx, c.ID, client.ContainerCommitOptions{Reference: ref, Changes: changes})
	require.NoError(e.t, err)
	testenv.RemoveImageOnCleanup(e.t, e.cli, ref)
	// Cleanups run last-registered first: the instances go before the
	// image (one that still used it would keep it, untagged, when a test
	// failed before its Destroy).
	e.t.Cleanup(e.destroyAll)
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

// requireLimitsHold checks that the processes of running OS instance id
// cannot lift the instance's limits from inside, and that the kernel holds
// want afterwards, which it returns. On cgroup v1 the controllers are
// read-only to the instance: it can neither leave its cgroup for the
// host's root cgroup of a controller nor write its limits. On cgroup v2
// the instance's cgroup mount is writable (systemd made init.scope
// there), but its own cgroup, the root of its cgroup namespace, keeps its
// limits out of its reach (nsdelegate, which the host's cgroup2 file
// system still has).
func (e *env) requireLimitsHold(id string, want kernelLimits) kernelLimits {
	t := e.t
	t.Helper()
	script := `for c in memory cpu pids; do echo $$ > /sys/fs/cgroup/$c/cgroup.procs && echo escaped to $c; done
for f in memory/memory.limit_in_bytes memory/memory.memsw.limit_in_bytes cpu/cpu.cfs_quota_us cpu/cpu.shares; do echo -1 > /sys/fs/cgroup/$f && echo wrote $f; done
cat /proc/self/cgroup`
	denied := "Read-only file system"
	if testenv.CgroupV2() {
		// tee reports the write's errno (the shell's echo says "I/O
		// error" whatever it is).
		script = `for f in memory.max memory.swap.max memory.high cpu.max pids.max; do echo max | tee /sys/fs/cgroup/$f >/dev/null && echo wrote $f; done
echo 10000 | tee /sys/fs/cgroup/cpu.weight >/dev/null && echo wrote cpu.weight
cat /proc/self/cgroup`
		denied = "Operation not permitted"
		opts := e.execOut(id, "findmnt", "-n", "-o", "OPTIONS", "/sys/fs/cgroup")
		assert.True(t, strings.HasPrefix(opts, "rw,"), "the instance's cgroup mount is writable: %s", opts)
		assert.Contains(t, e.execOut(id, "cat", "/proc/1/cgroup"), "0::/init.scope", "systemd runs in the init.scope it made")
		assert.NoError(t, checkNsdelegate(), "the host's cgroup2 superblock keeps nsdelegate")
	}
	var out, stderr bytes.Buffer
	_, err := e.drv.Exec(t.Context(), id, hypervisor.ExecSpec{Args: []string{"sh", "-c", script}, Stdout: &out, Stderr: &stderr})
	require.NoError(t, err)
	assert.NotContains(t, out.String(), "escaped", "stderr: %s", stderr.String())
	assert.NotContains(t, out.String(), "wrote", "stderr: %s", stderr.String())
	assert.Contains(t, stderr.String(), denied)
	got := readKernelLimits(t, e.inspect(id))
	assert.Equal(t, want, got, "the kernel keeps the spawn-time limits")
	return got
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
	// From its report on, the boot report's script starts no process
	// (see osimage's bootReportScript: on a cgroup v1 host such a process
	// could hold an orderly shutdown until its timeout). A sampler started
	// with the boot learns the script's PID while the script waits for the
	// end of the boot, waits for the report (the script writes its line to
	// a file once it is on the console) and lists the script's children
	// until the script ends: there are none.
	sampled := make(chan string, 1)
	go func() {
		var out, errb bytes.Buffer
		_, err := e.drv.Exec(t.Context(), "boot", hypervisor.ExecSpec{Stdout: &out, Stderr: &errb, Args: []string{"sh", "-c", `
m=0
until [ "$m" -gt 0 ] || [ -e /run/dockervisor/boot-report.line ]; do
	m=$(systemctl show -p MainPID --value dockervisor-boot-report.service 2>/dev/null); m=${m:-0}
	[ "$m" -gt 0 ] || sleep 0.05
done
echo "main $m"
while [ "$m" -gt 0 ] && [ ! -e /run/dockervisor/boot-report.line ] && [ -d "/proc/$m" ]; do sleep 0.02; done
while [ "$m" -gt 0 ] && [ -d "/proc/$m" ]; do pgrep -l -P "$m"; sleep 0.02; done
echo end`}})
		sampled <- fmt.Sprintf("%s%s%v", out.String(), errb.String(), err)
	}()

	st, err := e.waitBootedReported(t, "boot", hypervisor.WaitBootOptions{})
	require.NoError(t, err, "console:\n%s", e.console("boot"))
	assert.Equal(t, hypervisor.SystemRunning, st.System)
	assert.Empty(t, st.FailedUnits)
	select {
	case sample := <-sampled:
		if sample == "main 0\nend\n<nil>" {
			// Only a sampler that started after the report gets
			// here: the script has ended, and must have ended well.
			t.Logf("the boot report's script ended before it could be sampled")
			assert.Equal(t, "success\n", e.execOut("boot", "systemctl", "show", "-p", "Result", "--value", "dockervisor-boot-report.service"))
		} else {
			assert.Regexp(t, `^main [1-9][0-9]*\nend\n<nil>$`, sample, "the boot report's script started a process after its report")
		}
	case <-time.After(time.Minute):
		t.Errorf("the boot report's script did not end within a minute of the boot")
	}
	assert.Contains(t, e.console("boot"), bootReportPrefix)
	assert.Equal(t, "running\n", e.execOut("boot", "systemctl", "is-system-running"))
	assert.Equal(t, "systemd\n", e.execOut("boot", "cat", "/proc/1/comm"))
	assert.Equal(t, "os-boot\n", e.execOut("boot", "hostname"))
	assert.Equal(t, "docker\n", e.execOut("boot", "systemd-detect-virt", "--container"))

	c := e.inspect("boot")
	assert.False(t, c.HostConfig.Privileged)
	// The one capability added: the OS configures its own interfaces.
	assert.Equal(t, []string{"CAP_NET_ADMIN"}, []string(c.HostConfig.CapAdd))
	assert.Equal(t, container.NetworkMode("none"), c.HostConfig.NetworkMode)
	assert.True(t, c.Config.NetworkDisabled)
	assert.Contains(t, e.execOut("boot", "getent", "hosts", "localhost"), "localhost", "the Driver's hosts file")
	assert.False(t, c.HostConfig.PidMode.IsHost())
	assert.False(t, c.HostConfig.IpcMode.IsHost())
	assert.False(t, c.HostConfig.UTSMode.IsHost())
	if testenv.CgroupV2() {
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

	mode, err := e.drv.osCgroupMode(t.Context(), e.drv.api)
	require.NoError(t, err)
	if mode == cgroupV2Gate {
		assert.Equal(t, []string{"/bin/sh", "-c", gateScript, gateName, "/sbin/init"}, []string(c.Config.Entrypoint), "the init waits for the cgroup gate")
	}

	// The limits hold: the instance cannot lift them from inside.
	lim := e.requireLimitsHold("boot", wantLimits(2, 0, 256))

	// The driver reads the instance's counters from its cgroup (on cgroup
	// v2 systemd has moved every process into cgroups below it).
	r := e.drv.cgroups(t.Context(), e.drv.api, c.ID)
	require.NotNil(t, r, "the instance's cgroup is found")
	s, err := r.sample(t.Context(), c.ID, 0)
	require.NoError(t, err)
	assert.EqualValues(t, 256<<20, s.MemoryLimitBytes)
	assert.Positive(t, s.MemoryBytes)
	assert.True(t, hasDevice(s.Interfaces, "lo"), "%+v", s.Interfaces)

	con := e.console("boot")
	assert.Contains(t, con, "Welcome to")
	assert.Contains(t, con, "Reached target")

	// An agent restart sees an OS instance.
	info, err := e.newDriver().Info(t.Context(), "boot")
	require.NoError(t, err)
	assert.Equal(t, hypervisor.BootOS, info.Boot)

	// A rebuild boots the OS afresh, with the same limits. (Without the
	// hosts file, as an instance an older Driver spawned: the rebuild
	// writes it.)
	require.NoError(t, os.Remove(e.drv.hostsPath("boot")))
	require.NoError(t, e.drv.Rebuild(t.Context(), "boot", e.image))
	_, err = e.waitBooted("boot", hypervisor.WaitBootOptions{})
	require.NoError(t, err)
	c2 := e.inspect("boot")
	assert.NotEqual(t, c.ID, c2.ID)
	assert.Contains(t, e.execOut("boot", "getent", "hosts", "localhost"), "localhost")
	assert.Equal(t, "SIGRTMIN+3", c2.Config.StopSignal)
	assert.Equal(t, lim, readKernelLimits(t, c2))
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
	st, err := e.waitBootedReported(t, "ci", hypervisor.WaitBootOptions{CloudInit: true})
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
// and the limits hold in the kernel after each. Its image boots without
// cloud-init (noCloudInit): four boots, none about boot data.
func TestOSInstancePowerCycle(t *testing.T) {
	e := newOSEnv(t)
	e.image = e.derivedOSImage(noCloudInit)
	e.spawn(e.osSpec("pc"))
	_, err := e.waitBooted("pc", hypervisor.WaitBootOptions{})
	require.NoError(t, err)
	want := wantLimits(2, 0, 256)

	require.NoError(t, e.drv.PowerOff(t.Context(), "pc", hypervisor.StopOptions{Timeout: shutdownTimeout}))
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
	assert.Equal(t, want, readKernelLimits(t, e.inspect("pc")), "after power-off and power-on")

	before := e.inspect("pc").State.Pid
	require.NoError(t, e.drv.Reboot(t.Context(), "pc", hypervisor.RebootOptions{Timeout: shutdownTimeout}))
	st, err = e.waitBooted("pc", hypervisor.WaitBootOptions{})
	require.NoError(t, err)
	assert.True(t, st.LastShutdown.Orderly, "soft reboot shuts down in order")
	c := e.inspect("pc")
	assert.NotEqual(t, before, c.State.Pid, "a fresh boot")
	assert.Equal(t, want, readKernelLimits(t, c), "after a soft reboot")
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

// statCounter counts the engine's ContainerStatPath and ImageInspect
// calls.
type statCounter struct {
	APIClient
	n, inspects atomic.Int32
}

func (c *statCounter) ContainerStatPath(ctx context.Context, id string, o client.ContainerStatPathOptions) (client.ContainerStatPathResult, error) {
	c.n.Add(1)
	return c.APIClient.ContainerStatPath(ctx, id, o)
}

func (c *statCounter) ImageInspect(ctx context.Context, id string, o ...client.ImageInspectOption) (client.ImageInspectResult, error) {
	c.inspects.Add(1)
	return c.APIClient.ImageInspect(ctx, id, o...)
}

// TestSpawnInspectsImageOnce: a Spawn looks at its image once, whether it
// decides the boot from the image's label (BootAuto) or is told (BootOS).
func TestSpawnInspectsImageOnce(t *testing.T) {
	counter := &statCounter{APIClient: testenv.MustHaveDocker(t)}
	e := newEnv(t, WithAPIClient(counter))
	e.spawn(e.spec("auto"))
	assert.Equal(t, int32(1), counter.inspects.Load(), "BootAuto")
	spec := e.spec("os")
	spec.Command, spec.Boot = nil, hypervisor.BootOS
	_, err := e.drv.Spawn(t.Context(), spec)
	require.ErrorIs(t, err, hypervisor.ErrNoInit) // busybox: no /sbin/init
	assert.Equal(t, int32(2), counter.inspects.Load(), "BootOS")
}

// TestOSInstanceInitCheckedOncePerImage: Spawn asks the engine about an
// image's init once (executableCache); a second OS boot of the image
// without an init fails with ErrNoInit from the kept answer, and leaves
// nothing behind either.
func TestOSInstanceInitCheckedOncePerImage(t *testing.T) {
	counter := &statCounter{APIClient: testenv.MustHaveDocker(t)}
	e := newEnv(t, WithAPIClient(counter)) // busybox: no /sbin/init
	spec := e.spec("noinit")
	spec.Command = nil
	spec.Boot = hypervisor.BootOS
	_, err := e.drv.Spawn(t.Context(), spec)
	require.ErrorIs(t, err, hypervisor.ErrNoInit)
	e.requireGone("noinit")
	asked := counter.n.Load()
	require.Positive(t, asked)
	_, err = e.drv.Spawn(t.Context(), spec)
	require.ErrorIs(t, err, hypervisor.ErrNoInit)
	assert.Contains(t, err.Error(), "/sbin/init does not exist in the image")
	e.requireGone("noinit")
	assert.Equal(t, asked, counter.n.Load(), "the image's answer was kept")

	// Another path of the same image is asked.
	spec.Command = []string{"/bin"}
	_, err = e.drv.Spawn(t.Context(), spec)
	require.ErrorIs(t, err, hypervisor.ErrNoInit)
	e.requireGone("noinit")
	assert.Greater(t, counter.n.Load(), asked)
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
	// Without cloud-init (noCloudInit): the faults are the units';
	// UserDataFails boots the shared image, with cloud-init.
	e.image = e.derivedOSImage(withFiles(noCloudInit, map[string]string{
		"/etc/systemd/system/dv-broken.service": "[Unit]\nDescription=A unit that fails\n[Service]\nType=oneshot\nExecStart=/bin/false\n[Install]\nWantedBy=multi-user.target\n",
		wants + "dv-broken.service":             "->/etc/systemd/system/dv-broken.service",
		"/etc/systemd/system/dv-hang.service":   "[Unit]\nDescription=A unit whose stop hangs\n[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=/bin/true\nExecStop=/bin/sleep 3600\nTimeoutStopSec=infinity\n[Install]\nWantedBy=multi-user.target\n",
		wants + "dv-hang.service":               "->/etc/systemd/system/dv-hang.service",
	}))

	t.Run("DegradedAndHungShutdown", func(t *testing.T) {
		e.spawn(e.osSpec("bad"))
		st, err := e.waitBootedReported(t, "bad", hypervisor.WaitBootOptions{})
		require.ErrorIs(t, err, hypervisor.ErrDegraded)
		assert.Contains(t, err.Error(), "dv-broken.service")
		assert.Equal(t, hypervisor.SystemDegraded, st.System)
		assert.Equal(t, []string{"dv-broken.service"}, st.FailedUnits)
		con := e.console("bad")
		assert.Contains(t, con, "Failed to start")
		// The journal's warning, forwarded to the console.
		assert.Contains(t, con, "dv-broken.service: Failed with result 'exit-code'")

		start := time.Now()
		// 6 s: time for systemd to print the stop of the hung unit on a
		// slow host (under emulation) before the kill.
		require.NoError(t, e.drv.PowerOff(t.Context(), "bad", hypervisor.StopOptions{Timeout: 6 * time.Second}))
		took := time.Since(start)
		assert.Equal(t, hypervisor.StateShutdown, e.state("bad"))
		st, err = e.drv.OSStatus(t.Context(), "bad")
		require.NoError(t, err)
		assert.True(t, st.LastShutdown.TimedOut, "%+v", st.LastShutdown)
		assert.False(t, st.LastShutdown.Orderly)
		assert.Equal(t, 137, st.LastShutdown.ExitCode)
		assert.GreaterOrEqual(t, took, 6*time.Second, "killed after the timeout, not before")
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
		st, err := e.waitBootedReported(t, "udfail", hypervisor.WaitBootOptions{CloudInit: true})
		require.ErrorIs(t, err, hypervisor.ErrCloudInit)
		assert.Equal(t, "error", st.CloudInit.Status)
		assert.NotEmpty(t, st.CloudInit.Errors)
		assert.Contains(t, e.console("udfail"), "user-data about to fail")
		require.NoError(t, e.drv.Destroy(t.Context(), "udfail"))
		e.requireGone("udfail")
	})
}

// TestOSInstanceBootWithoutReport: images that do not report the end of
// their boot on the console are waited for by asking the instance: one
// without the report's label (booted, then degraded by a failing unit,
// with failing user-data), and one whose label announces a report that
// never comes (its unit masked), which the slow backstop asks.
func TestOSInstanceBootWithoutReport(t *testing.T) {
	e := newOSEnv(t)
	noLabel := "LABEL " + bootReportLabel + "="
	plain := e.derivedOSImage(map[string]string{"/etc/dockervisor-test": "no report"}, noLabel)
	wants := "/etc/systemd/system/multi-user.target.wants/"
	broken := e.derivedOSImage(map[string]string{
		"/etc/systemd/system/dv-broken.service": "[Unit]\nDescription=A unit that fails\n[Service]\nType=oneshot\nExecStart=/bin/false\n[Install]\nWantedBy=multi-user.target\n",
		wants + "dv-broken.service":             "->/etc/systemd/system/dv-broken.service",
	}, noLabel)
	// The silent image is the backstop's subject alone: no cloud-init.
	silent := e.derivedOSImage(withFiles(noCloudInit, map[string]string{"/etc/systemd/system/dockervisor-boot-report.service": "->/dev/null"}))

	specs := map[string]hypervisor.InstanceSpec{}
	for id, img := range map[string]string{"plain": plain, "broken": broken, "silent": silent} {
		spec := e.osSpec(id)
		spec.Image = img
		if id == "broken" {
			spec.UserData = []byte("#!/bin/sh\necho user-data about to fail\nexit 3\n")
		}
		specs[id] = spec
		e.spawn(spec)
	}
	steps := e.countBootSteps()

	st, err := e.waitBooted("plain", hypervisor.WaitBootOptions{CloudInit: true})
	require.NoError(t, err, "console:\n%s", e.console("plain"))
	assert.Equal(t, hypervisor.SystemRunning, st.System)
	assert.Equal(t, "done", st.CloudInit.Status)
	report, polls := steps.take()
	assert.Zero(t, report)
	assert.Positive(t, polls)
	// The poll may see the end of the boot before the unit has written.
	assert.Eventually(t, func() bool {
		out, err := e.drv.ConsoleOutput(t.Context(), "plain", hypervisor.ConsoleOptions{})
		return err == nil && strings.Contains(string(out), bootReportPrefix)
	}, bootTimeout, 100*time.Millisecond,
		"the unit still reports; without the label the driver does not read it")

	st, err = e.waitBooted("broken", hypervisor.WaitBootOptions{})
	require.ErrorIs(t, err, hypervisor.ErrDegraded)
	assert.Contains(t, st.FailedUnits, "dv-broken.service")
	st, err = e.waitBooted("broken", hypervisor.WaitBootOptions{CloudInit: true})
	require.ErrorIs(t, err, hypervisor.ErrCloudInit)
	assert.Equal(t, "error", st.CloudInit.Status)
	report, polls = steps.take()
	assert.Zero(t, report)
	assert.Positive(t, polls)

	st, err = e.waitBooted("silent", hypervisor.WaitBootOptions{})
	require.NoError(t, err, "console:\n%s", e.console("silent"))
	assert.Equal(t, hypervisor.SystemRunning, st.System)
	report, polls = steps.take()
	assert.Zero(t, report)
	assert.Positive(t, polls, "the backstop asked")
	assert.NotContains(t, e.console("silent"), bootReportPrefix)

	for id := range specs {
		require.NoError(t, e.drv.Destroy(t.Context(), id))
		e.requireGone(id)
	}
}

// TestOSConfig checks the create-time variation for each way of giving
// systemd its cgroups (this host uses one; the others are checked here
// only, and in the kernel lane).
func TestOSConfig(t *testing.T) {
	for _, mode := range []cgroupMode{cgroupV1Systemd, cgroupV2Writable, cgroupV2Gate} {
		cs := containerSpec{spec: hypervisor.InstanceSpec{ID: "x", Env: map[string]string{"A": "b", "product_name": "mine"},
			VIFs: []network.VIF{{ID: "p1"}, {ID: "p2"}}}, os: true}
		cfg := &container.Config{Cmd: []string{"ignored"}, Env: cs.env()}
		hc := &container.HostConfig{}
		cs.osConfig(cfg, hc, mode)
		assert.Empty(t, cfg.Cmd)
		// The spec's own variables win.
		assert.Equal(t, []string{"A=b", "DOCKERVISOR_VIFS=eth0,eth1", "container=docker", "product_name=mine"}, cfg.Env)
		assert.Equal(t, []string{"NET_ADMIN"}, []string(hc.CapAdd))
		assert.Equal(t, "SIGRTMIN+3", cfg.StopSignal)
		assert.True(t, cfg.Tty)
		assert.False(t, hc.Privileged)
		assert.Len(t, hc.Tmpfs, 2)
		switch mode {
		case cgroupV1Systemd:
			assert.Equal(t, []string{"/sbin/init"}, []string(cfg.Entrypoint))
			assert.Empty(t, hc.CgroupnsMode)
			assert.Empty(t, hc.SecurityOpt)
			require.Len(t, hc.Mounts, 1)
			assert.Equal(t, "/sys/fs/cgroup/systemd", hc.Mounts[0].Source)
			assert.Equal(t, "/sys/fs/cgroup/systemd", hc.Mounts[0].Target)
		case cgroupV2Writable:
			assert.Equal(t, []string{"/sbin/init"}, []string(cfg.Entrypoint))
			assert.Equal(t, container.CgroupnsModePrivate, hc.CgroupnsMode)
			assert.Equal(t, []string{"writable-cgroups=true"}, hc.SecurityOpt)
			assert.Empty(t, hc.Mounts)
		case cgroupV2Gate:
			assert.Equal(t, []string{"/bin/sh", "-c", gateScript, gateName, "/sbin/init"}, []string(cfg.Entrypoint))
			assert.Equal(t, container.CgroupnsModePrivate, hc.CgroupnsMode)
			assert.Empty(t, hc.SecurityOpt)
			assert.Empty(t, hc.Mounts)
		}
	}
	cs := containerSpec{spec: hypervisor.InstanceSpec{Command: []string{"/lib/systemd/systemd", "--log-level=debug"}}, os: true}
	assert.Equal(t, []string{"/lib/systemd/systemd", "--log-level=debug"}, cs.initCommand())
}

// TestCgroupGateScript runs the gate's script with /bin/sh: it waits while
// the flag is missing and then executes the init, with its arguments, in
// its own place.
func TestCgroupGateScript(t *testing.T) {
	flag := filepath.Join(t.TempDir(), "flag")
	script := strings.ReplaceAll(gateScript, cgroupGateFlag, flag)
	require.NotEqual(t, gateScript, script, "the script names the flag")
	cmd := exec.CommandContext(t.Context(), "/bin/sh", "-c", script, gateName, "/bin/sh", "-c", `echo "init $$ $1"`, "x", "arg one")
	var out bytes.Buffer
	cmd.Stdout = &out
	require.NoError(t, cmd.Start())
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case err := <-exited:
		t.Fatalf("the gate did not wait for its flag: %v, %q", err, out.String())
	case <-time.After(300 * time.Millisecond):
	}
	require.NoError(t, os.WriteFile(flag, nil, 0o600))
	require.NoError(t, <-exited)
	assert.Equal(t, fmt.Sprintf("init %d arg one\n", cmd.Process.Pid), out.String(), "the init replaces the gate, as the same process")
}

// TestOSCgroupMode: how the driver gives an OS instance its cgroups on
// each kind of engine host, and that a remote engine that cannot is
// refused up front, in Capabilities and at Spawn.
func TestOSCgroupMode(t *testing.T) {
	cli := testenv.MustHaveDocker(t)
	// A local engine on cgroup v2 is used only where the host's cgroup2
	// has nsdelegate; this host's tells which answer to expect.
	nsdelegate := checkNsdelegate()
	for _, c := range []struct {
		name, host, cgroup, api string
		want                    cgroupMode
		unsupported             string // what the error names
	}{
		{"v1", "", "1", "1.41", cgroupV1Systemd, ""},
		{"v1 remote", "tcp://127.0.0.1:1", "1", "1.41", cgroupV1Systemd, ""},
		{"v2 writable cgroups", "", "2", "1.48", cgroupV2Writable, ""},
		{"v2 before writable cgroups", "", "2", "1.41", cgroupV2Gate, ""},
		{"v2 writable cgroups remote", "tcp://127.0.0.1:1", "2", "1.51", cgroupV2Writable, ""},
		{"v2 remote before writable cgroups", "tcp://127.0.0.1:1", "2", "1.47", 0, "remote"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.host == "" && c.cgroup == "2" && nsdelegate != nil {
				c.unsupported = "nsdelegate"
			}
			api := &cgroupEngine{Client: cli, cgroup: c.cgroup, api: c.api}
			opts := []Option{WithAPIClient(api), WithStateDir(t.TempDir())}
			if c.host != "" {
				opts = append(opts, WithDockerHost(c.host))
			}
			d, err := New(opts...)
			require.NoError(t, err)
			assert.True(t, d.Capabilities().OSInstances, "nothing known of the engine yet")
			mode, err := d.osCgroupMode(t.Context(), api)
			if c.unsupported != "" {
				require.ErrorIs(t, err, hypervisor.ErrNotSupported)
				assert.Contains(t, err.Error(), c.unsupported)
				assert.Equal(t, c.host == "", d.Capabilities().OSInstances, "known up front for a remote engine")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, c.want, mode)
			assert.True(t, d.Capabilities().OSInstances)
		})
	}

	// Facts read for another purpose tell Capabilities too.
	remote := &cgroupEngine{Client: cli, cgroup: "2", api: "1.41"}
	d, err := New(WithAPIClient(remote), WithDockerHost("tcp://127.0.0.1:1"), WithStateDir(t.TempDir()))
	require.NoError(t, err)
	_, err = d.HostFacts(t.Context())
	require.NoError(t, err)
	assert.False(t, d.Capabilities().OSInstances)
	_, err = d.Spawn(t.Context(), hypervisor.InstanceSpec{ID: "os", Image: testenv.BusyboxImage(t), Boot: hypervisor.BootOS, MemoryMB: 64})
	require.ErrorIs(t, err, hypervisor.ErrNotSupported)
	assert.Contains(t, err.Error(), "writable cgroups")
}

// cgroupEngine is the real engine reporting another cgroup version and
// API version.
type cgroupEngine struct {
	*client.Client
	cgroup, api string
}

func (c *cgroupEngine) ClientVersion() string { return c.api }

func (c *cgroupEngine) Info(ctx context.Context, o client.InfoOptions) (client.SystemInfoResult, error) {
	res, err := c.Client.Info(ctx, o)
	res.Info.CgroupVersion = c.cgroup
	return res, err
}

// TestOSInstanceGateShell: where an OS instance's init is started by the
// gate (cgroup v2, an engine before writable cgroups), an image without
// /bin/sh is refused with ErrNotSupported naming it, and nothing is left;
// elsewhere such an image boots.
func TestOSInstanceGateShell(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	// busybox as /sbin/init, and no shell.
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	bb, err := os.ReadFile(busybox.Path)
	require.NoError(t, err)
	for _, h := range []*tar.Header{
		{Typeflag: tar.TypeDir, Name: "bin/", Mode: 0o755},
		{Typeflag: tar.TypeDir, Name: "sbin/", Mode: 0o755},
		{Typeflag: tar.TypeReg, Name: "bin/busybox", Mode: 0o755, Size: int64(len(bb))},
		{Typeflag: tar.TypeSymlink, Name: "sbin/init", Linkname: "/bin/busybox", Mode: 0o777},
	} {
		require.NoError(t, tw.WriteHeader(h))
		if h.Name == "bin/busybox" {
			_, err := tw.Write(bb)
			require.NoError(t, err)
		}
	}
	require.NoError(t, tw.Close())
	ref := "dockervisor-test/noshell:" + testenv.UniqueName("t")
	rc, err := e.cli.ImageImport(ctx, client.ImageImportSource{Source: &buf, SourceName: "-"}, ref, client.ImageImportOptions{})
	require.NoError(t, err)
	require.NoError(t, busybox.DrainJSONStream(rc))
	rc.Close()
	testenv.RemoveImageOnCleanup(t, e.cli, ref)

	// The check itself, on a created container of that image.
	c, err := e.cli.ContainerCreate(ctx, client.ContainerCreateOptions{Config: &container.Config{Image: ref, Entrypoint: []string{"/sbin/init"}}})
	require.NoError(t, err)
	testenv.RemoveContainerOnCleanup(t, e.cli, c.ID)
	err = e.drv.osRoom.checkGateShell(ctx, e.drv.api, "", c.ID)
	require.ErrorIs(t, err, hypervisor.ErrNotSupported)
	assert.Contains(t, err.Error(), "/bin/sh does not exist in the image")
	require.NoError(t, e.drv.osRoom.checkInit(ctx, e.drv.api, "", c.ID, "/sbin/init", nil))

	spec := e.spec("noshell")
	spec.Image, spec.Command, spec.Boot = ref, nil, hypervisor.BootOS
	mode, err := e.drv.osCgroupMode(ctx, e.drv.api)
	require.NoError(t, err)
	_, err = e.drv.Spawn(ctx, spec)
	if mode == cgroupV2Gate {
		require.ErrorIs(t, err, hypervisor.ErrNotSupported)
		e.requireGone("noshell")
		return
	}
	require.NoError(t, err, "mode %d needs no shell", mode)
	require.NoError(t, e.drv.Destroy(ctx, "noshell"))
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

func TestCloudInitStages(t *testing.T) {
	sum := map[string]time.Duration{"init": time.Second}
	require.NoError(t, cloudInitStages(`{"v1": {"datasource": "DataSourceNone", "stage": null,
		"init-local": {"errors": [], "start": 100.0, "finished": 100.25},
		"init": {"errors": [], "start": 101.0, "finished": 101.5},
		"modules-final": {"errors": [], "start": null, "finished": null}}}`, sum))
	assert.Equal(t, map[string]time.Duration{"init-local": 250 * time.Millisecond, "init": 1500 * time.Millisecond}, sum)
	assert.Error(t, cloudInitStages(`{"v1": {"init": {"start": 1.0, "finished": null}}}`, sum))
	assert.Error(t, cloudInitStages(`{"v1": {"stage": null}}`, sum))
	assert.Error(t, cloudInitStages(`not json`, sum))
}

func TestBootTimeline(t *testing.T) {
	var tl bootTimeline
	// systemd's answer, in microseconds of the monotonic clock.
	out := "UserspaceTimestampMonotonic=1090000\nFinishTimestampMonotonic=2370000\n"
	start, finish, err := guestTimes(out)
	require.NoError(t, err)
	assert.Equal(t, 1090*time.Millisecond, start)
	assert.Equal(t, 2370*time.Millisecond, finish)
	require.NoError(t, tl.add(time.Second, 2380*time.Millisecond, out))
	require.NoError(t, tl.add(time.Second, 2390*time.Millisecond, out))
	assert.Equal(t, bootTimeline{before: 180 * time.Millisecond, guest: 2560 * time.Millisecond, after: 30 * time.Millisecond, n: 2}, tl)
	// A guest whose systemd started before the boot did, or finished
	// after the host knew, is not on the host's clock.
	assert.Error(t, tl.add(1100*time.Millisecond, 2380*time.Millisecond, out))
	assert.Error(t, tl.add(time.Second, 2300*time.Millisecond, out))
	for _, bad := range []string{
		"", "Bootup is not yet finished.\n",
		"UserspaceTimestampMonotonic=1090000\nFinishTimestampMonotonic=0\n", // startup not finished
		"UserspaceTimestampMonotonic=soon\nFinishTimestampMonotonic=2370000\n",
	} {
		_, _, err := guestTimes(bad)
		assert.Error(t, err, "%q", bad)
	}
	assert.Equal(t, 2, tl.n, "a failed add adds nothing")
}
