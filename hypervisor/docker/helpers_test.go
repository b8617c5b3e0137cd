package docker

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"github.com/stretchr/testify/require"

	"github.com/dockervisor/dockervisor/hypervisor"
	"github.com/dockervisor/dockervisor/internal/testenv"
	"github.com/dockervisor/dockervisor/stats"
)

// sleeper runs until it gets SIGTERM, and exits 0 on it, as a well-behaved
// guest init does.
var sleeper = []string{"sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"}

type env struct {
	t     *testing.T
	drv   *Driver
	cli   *client.Client
	image string
	dir   string
	opts  []Option
}

// newEnv returns a Driver on the real engine with a label and name prefix
// unique to the test, a private state directory, and a busybox image. Every
// instance the driver still has is destroyed at cleanup.
func newEnv(t *testing.T, opts ...Option) *env {
	t.Helper()
	return newEnvWith(t, testenv.MustHaveDocker(t), testenv.BusyboxImage(t), opts...)
}

// newEnvWith is newEnv on the engine cli talks to (opts say how the
// Driver reaches it), with image as e.image.
func newEnvWith(t *testing.T, cli *client.Client, img string, opts ...Option) *env {
	t.Helper()
	uniq := testenv.UniqueName("t")
	e := &env{t: t, cli: cli, image: img, dir: t.TempDir()}
	e.opts = append([]Option{
		WithLabelPrefix("io.dockervisor." + uniq + "."),
		WithNamePrefix("dv-" + uniq + "-"),
		WithStateDir(e.dir),
		WithStopTimeout(2 * time.Second),
	}, opts...)
	e.drv = e.newDriver()
	t.Cleanup(e.destroyAll)
	return e
}

// newDriver builds another Driver on the same engine, prefixes and state
// directory, as an agent restart would.
func (e *env) newDriver() *Driver {
	e.t.Helper()
	d, err := New(e.opts...)
	require.NoError(e.t, err)
	e.t.Cleanup(func() { d.Close() })
	return d
}

// destroyAll destroys every instance under the env's prefix, through a
// fresh Driver (the test may have closed its own).
func (e *env) destroyAll() {
	ctx := context.WithoutCancel(e.t.Context())
	d, err := New(e.opts...)
	if err != nil {
		e.t.Errorf("cleanup: %v", err)
		return
	}
	defer d.Close()
	list, err := d.List(ctx, hypervisor.ListOptions{})
	if err != nil {
		e.t.Errorf("cleanup: list: %v", err)
		return
	}
	for _, inst := range list {
		if err := d.Destroy(ctx, inst.ID); err != nil {
			e.t.Errorf("cleanup: destroy %s: %v", inst.ID, err)
		}
	}
}

func (e *env) spec(id string) hypervisor.InstanceSpec {
	return hypervisor.InstanceSpec{ID: id, Name: "vm-" + id, Image: e.image, Command: sleeper, VCPUs: 1, MemoryMB: 64}
}

func (e *env) spawn(spec hypervisor.InstanceSpec) hypervisor.Instance {
	e.t.Helper()
	inst, err := e.drv.Spawn(e.t.Context(), spec)
	require.NoError(e.t, err)
	return inst
}

func (e *env) state(id string) hypervisor.State {
	e.t.Helper()
	info, err := e.drv.Info(e.t.Context(), id)
	require.NoError(e.t, err)
	return info.State
}

// inspect returns the engine's view of an instance's container.
func (e *env) inspect(id string) container.InspectResponse {
	e.t.Helper()
	res, err := e.cli.ContainerInspect(e.t.Context(), e.drv.containerName(id), client.ContainerInspectOptions{})
	require.NoError(e.t, err)
	return res.Container
}

// containersNamed counts the engine's containers (running or not) whose
// name is exactly name.
func (e *env) containersNamed(name string) int {
	e.t.Helper()
	res, err := e.cli.ContainerList(e.t.Context(), client.ContainerListOptions{All: true, Filters: make(client.Filters).Add("name", "^/"+name+"$")})
	require.NoError(e.t, err)
	return len(res.Items)
}

// kernelLimits are an instance's limits as the kernel holds them, in the
// kernel's own units, read from its cgroup: on cgroup v1
// memory.limit_in_bytes, memory.memsw.limit_in_bytes less that,
// cpu.shares and cpu.cfs_quota_us/cpu.cfs_period_us; on cgroup v2
// memory.max, memory.swap.max, cpu.weight and cpu.max. -1 is "max"
// (no limit).
type kernelLimits struct {
	MemoryBytes int64
	SwapBytes   int64 // swap allowed beyond MemoryBytes
	CPUWeight   int64 // cpu.shares on v1, cpu.weight on v2
	CFSQuota    int64 // µs per period
	CFSPeriod   int64 // µs
}

// cfsPeriod is the engine's CFS period, in µs.
const cfsPeriod = 100000

// wantLimits returns the kernel's values for the limits the driver sets
// for vcpus (CPU shares), a CFS quota of quotaCPUs CPUs (0: none) and
// memoryMB (no swap beyond it), in the units of this host's cgroup
// version. On cgroup v2 the engine's runtime (runc) maps shares to
// cpu.weight as 1 + (shares-2)*9999/262142, which is computed here
// forwards, never inverted.
func wantLimits(vcpus, quotaCPUs int, memoryMB int64) kernelLimits {
	k := kernelLimits{MemoryBytes: memoryMB << 20, CFSQuota: -1, CFSPeriod: cfsPeriod}
	if quotaCPUs > 0 {
		k.CFSQuota = int64(quotaCPUs) * cfsPeriod
	}
	shares := int64(vcpus) * cpuSharesPerVCPU
	k.CPUWeight = shares
	if testenv.CgroupV2() {
		k.CPUWeight = 1 + (shares-2)*9999/262142
	}
	return k
}

// containerCgroup returns the cgroup directory of container cid in each
// hierarchy ("" for the unified one), from the /proc/<pid>/cgroup of its
// process: the path up to the component that names the container
// (<cid> with the cgroupfs driver, docker-<cid>.scope with systemd's),
// without what the instance made below it (an OS instance's init.scope).
func containerCgroup(t *testing.T, pid int, cid string) map[string]string {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/cgroup", pid))
	require.NoError(t, err)
	defer f.Close()
	paths := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) != 3 {
			continue
		}
		p := parts[2]
		if i := strings.Index(p, cid); i >= 0 {
			if j := strings.IndexByte(p[i:], '/'); j >= 0 {
				p = p[:i+j]
			}
		}
		for _, ctrl := range strings.Split(parts[1], ",") {
			paths[ctrl] = p
		}
	}
	require.NoError(t, sc.Err())
	return paths
}

// readKernelLimits reads the limits of a running container's cgroup.
func readKernelLimits(t *testing.T, c container.InspectResponse) kernelLimits {
	t.Helper()
	require.NotNil(t, c.State)
	require.Positive(t, c.State.Pid, "container %s has no process", c.ID)
	paths := containerCgroup(t, c.State.Pid, c.ID)
	read := func(p string, field int) int64 {
		b, err := os.ReadFile(p)
		require.NoError(t, err)
		f := strings.Fields(string(b))
		require.Greater(t, len(f), field, "%s: %q", p, b)
		if f[field] == "max" {
			return -1
		}
		v, err := strconv.ParseInt(f[field], 10, 64)
		require.NoError(t, err, p)
		return v
	}
	if testenv.CgroupV2() {
		// Where the runtime put the container (crun: below the
		// engine's scope), as the Driver reads it.
		base, _ := runtimeCgroup(filepath.Join("/sys/fs/cgroup", paths[""]), c.ID)
		require.FileExists(t, filepath.Join(base, "memory.max"), "container %s's cgroup", c.ID)
		return kernelLimits{
			MemoryBytes: read(filepath.Join(base, "memory.max"), 0),
			SwapBytes:   read(filepath.Join(base, "memory.swap.max"), 0),
			CPUWeight:   read(filepath.Join(base, "cpu.weight"), 0),
			CFSQuota:    read(filepath.Join(base, "cpu.max"), 0),
			CFSPeriod:   read(filepath.Join(base, "cpu.max"), 1),
		}
	}
	cpuDir := "/sys/fs/cgroup/cpu"
	if _, err := os.Stat(cpuDir); err != nil {
		cpuDir = "/sys/fs/cgroup/cpu,cpuacct"
	}
	mem := filepath.Join("/sys/fs/cgroup/memory", paths["memory"])
	k := kernelLimits{
		MemoryBytes: read(filepath.Join(mem, "memory.limit_in_bytes"), 0),
		CPUWeight:   read(filepath.Join(cpuDir, paths["cpu"], "cpu.shares"), 0),
		CFSQuota:    read(filepath.Join(cpuDir, paths["cpu"], "cpu.cfs_quota_us"), 0),
		CFSPeriod:   read(filepath.Join(cpuDir, paths["cpu"], "cpu.cfs_period_us"), 0),
	}
	// Without swap accounting the kernel has no memsw files: then no
	// swap can be used beyond the memory limit either.
	if _, err := os.Stat(filepath.Join(mem, "memory.memsw.limit_in_bytes")); err == nil {
		k.SwapBytes = read(filepath.Join(mem, "memory.memsw.limit_in_bytes"), 0) - k.MemoryBytes
	}
	return k
}

// hasDevice reports whether ifs has an interface named dev.
func hasDevice(ifs []stats.Interface, dev string) bool {
	for _, i := range ifs {
		if i.Device == dev {
			return true
		}
	}
	return false
}

// recordPath is the file of instance id's state record.
func (e *env) recordPath(id string) string {
	return filepath.Join(e.drv.state.instances.Dir(), id+".json")
}

// crashGuest kills the process of running container cid from the host,
// as a crash of the guest ends it: no request to the engine, so no kill
// event (a kill through the engine is something outside the driver
// acting, an external reason).
func crashGuest(t *testing.T, cli *client.Client, cid string) {
	t.Helper()
	c, err := cli.ContainerInspect(t.Context(), cid, client.ContainerInspectOptions{})
	require.NoError(t, err)
	require.NotNil(t, c.Container.State)
	require.NotZero(t, c.Container.State.Pid, "container %s has no process", cid)
	p, err := os.FindProcess(c.Container.State.Pid)
	require.NoError(t, err)
	require.NoError(t, p.Kill())
}
