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
	cli := testenv.MustHaveDocker(t)
	img := testenv.BusyboxImage(t)
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

// kernelLimits reads the memory limit (bytes) and CPU weight of a process's
// cgroup from the kernel, for cgroup v1 (cpu.shares) and v2 (cpu.weight,
// converted back to shares as the engine converts them).
type kernelLimits struct {
	MemoryBytes int64
	CPUShares   int64
	CFSQuota    int64 // µs per period; -1 unlimited
}

func readKernelLimits(t *testing.T, pid int) kernelLimits {
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
		for _, ctrl := range strings.Split(parts[1], ",") {
			paths[ctrl] = parts[2]
		}
	}
	read := func(p string) int64 {
		b, err := os.ReadFile(p)
		require.NoError(t, err)
		s := strings.TrimSpace(string(b))
		if s == "max" {
			return -1
		}
		s = strings.Fields(s)[0]
		v, err := strconv.ParseInt(s, 10, 64)
		require.NoError(t, err)
		return v
	}
	if unified, ok := paths[""]; ok && len(paths) == 1 {
		base := filepath.Join("/sys/fs/cgroup", unified)
		weight := read(filepath.Join(base, "cpu.weight"))
		return kernelLimits{
			MemoryBytes: read(filepath.Join(base, "memory.max")),
			CPUShares:   2 + ((weight-1)*262142)/9999, // inverse of the engine's shares→weight
			CFSQuota:    read(filepath.Join(base, "cpu.max")),
		}
	}
	cpuDir := "/sys/fs/cgroup/cpu"
	if _, err := os.Stat(cpuDir); err != nil {
		cpuDir = "/sys/fs/cgroup/cpu,cpuacct"
	}
	return kernelLimits{
		MemoryBytes: read(filepath.Join("/sys/fs/cgroup/memory", paths["memory"], "memory.limit_in_bytes")),
		CPUShares:   read(filepath.Join(cpuDir, paths["cpu"], "cpu.shares")),
		CFSQuota:    read(filepath.Join(cpuDir, paths["cpu"], "cpu.cfs_quota_us")),
	}
}

// recordPath is the file of instance id's state record.
func (e *env) recordPath(id string) string {
	return filepath.Join(e.drv.state.instances.Dir(), id+".json")
}
