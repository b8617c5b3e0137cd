package docker

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dockervisor/dockervisor/hypervisor"
	"github.com/dockervisor/dockervisor/internal/enginestats"
	"github.com/dockervisor/dockervisor/internal/testenv"
	"github.com/dockervisor/dockervisor/stats"
)

func TestSplitContainerCgroup(t *testing.T) {
	const cid = "0123456789abcdef"
	for _, c := range []struct {
		path, parent string
		name         cgroupName
		ok           bool
	}{
		{"/docker/" + cid, "/docker", cgroupName{}, true},
		{"/system.slice/docker-" + cid + ".scope", "/system.slice", cgroupName{"docker-", ".scope"}, true},
		// An OS instance's init on cgroup v2 runs in a cgroup it made.
		{"/system.slice/docker-" + cid + ".scope/init.scope", "/system.slice", cgroupName{"docker-", ".scope"}, true},
		{"/dockervisor-test-1/" + cid + "/system.slice/ssh.service", "/dockervisor-test-1", cgroupName{}, true},
		{"/", "", cgroupName{}, false},
		{"/docker/other", "", cgroupName{}, false},
	} {
		parent, name, ok := splitContainerCgroup(c.path, cid)
		assert.Equal(t, c.ok, ok, c.path)
		assert.Equal(t, c.parent, parent, c.path)
		assert.Equal(t, c.name, name, c.path)
		if ok {
			assert.Equal(t, c.parent+"/"+name.of(cid), c.path[:len(c.parent)+1+len(name.of(cid))])
		}
	}
}

// TestCgroup2Root: the root of a container's cgroup2 mount, as the host
// reads it in the container's mount table, names the cgroup its runtime
// made (runc: the engine's scope; crun: a sub-cgroup of it), or the top
// of the hierarchy for a container in the host's cgroup namespace.
func TestCgroup2Root(t *testing.T) {
	const cid = "0123456789abcdef"
	line := func(root string) string {
		return "1037 1029 0:30 " + root + " /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime - cgroup2 cgroup rw,nsdelegate,memory_recursiveprot\n"
	}
	other := "1029 1000 0:95 / / rw,relatime - overlay overlay rw,lowerdir=/a,upperdir=/b,workdir=/c\n" +
		"1036 1029 0:97 / /sys ro,nosuid,nodev,noexec,relatime - sysfs sysfs ro\n"
	for _, c := range []struct {
		mi, root string
		ok       bool
	}{
		{other + line("/system.slice/docker-"+cid+".scope"), "/system.slice/docker-" + cid + ".scope", true},
		{other + line("/system.slice/docker-"+cid+".scope/container"), "/system.slice/docker-" + cid + ".scope/container", true},
		{other + line("/"), "/", true},
		// cgroup v1: no cgroup2 file system at /sys/fs/cgroup.
		{other + "1040 1029 0:31 / /sys/fs/cgroup rw - tmpfs tmpfs rw\n", "", false},
		{other, "", false},
	} {
		root, ok := cgroup2Root([]byte(c.mi), "/sys/fs/cgroup")
		assert.Equal(t, c.ok, ok, c.mi)
		assert.Equal(t, c.root, root, c.mi)
	}
}

// TestBulkStatsFromKernel: with a local engine, AllInstanceStats reads an
// instance's counters from its cgroup wherever the engine's cgroup
// driver puts it (cgroupfs: <parent>/<container ID>; systemd:
// <slice>/docker-<container ID>.scope), on both cgroup versions; on
// cgroup v2 block I/O comes from io.stat, and the engine's statistics
// count it too.
func TestBulkStatsFromKernel(t *testing.T) {
	drivers := []string{testenv.CgroupDriverCgroupfs}
	if testenv.SystemdRuns() {
		drivers = append(drivers, testenv.CgroupDriverSystemd)
	}
	for _, driver := range drivers {
		t.Run(driver, func(t *testing.T) {
			ctx := t.Context()
			eng := testenv.StartEngine(t, testenv.EngineOptions{CgroupDriver: driver})
			ref := "dockervisor-test/busybox:bulk"
			require.NoError(t, eng.LoadBusybox(ctx, ref))
			d, err := New(WithDockerHost(eng.Socket), WithStateDir(t.TempDir()), WithStopTimeout(time.Second))
			require.NoError(t, err)
			t.Cleanup(func() { d.Close() })

			// 8 MiB written and read back with O_DIRECT, which block I/O
			// accounting charges to the instance's cgroup.
			spec := hypervisor.InstanceSpec{ID: "bulk", Image: ref, MemoryMB: 64, Command: []string{"sh", "-c",
				"dd if=/dev/zero of=/tmp/x bs=1M count=8 oflag=direct 2>/dev/null && dd if=/tmp/x of=/dev/null bs=1M iflag=direct 2>/dev/null && echo io-done; " +
					"trap 'exit 0' TERM; sleep 3600 & wait"}}
			_, err = d.Spawn(ctx, spec)
			require.NoError(t, err)
			t.Cleanup(func() { _ = d.Destroy(context.WithoutCancel(ctx), "bulk") })
			waitConsoleOf(t, d, "bulk", "io-done")

			res, err := eng.Client.ContainerInspect(ctx, d.containerName("bulk"), client.ContainerInspectOptions{})
			require.NoError(t, err)
			cid := res.Container.ID
			r := d.cgroups(ctx, d.api, cid)
			require.NotNil(t, r, "the driver finds the instance's cgroup")
			name := cid
			if driver == testenv.CgroupDriverSystemd {
				name = "docker-" + cid + ".scope"
			}
			switch r := r.(type) {
			case cgroupV2:
				require.True(t, testenv.CgroupV2())
				assert.Equal(t, name, filepath.Base(r.dir(cid)))
				assert.True(t, strings.Contains(r.parent, "dockervisor-test-"+eng.Name) || strings.Contains(r.parent, "dockervisor_test_"+eng.Name), "in the engine's cgroup parent: %s", r.parent)
			case cgroupV1:
				require.False(t, testenv.CgroupV2())
				assert.Equal(t, name, r.name.of(cid))
				assert.Contains(t, r.memory, eng.Name)
			default:
				t.Fatalf("reader %T", r)
			}
			f, err := d.facts(ctx, d.api)
			require.NoError(t, err)
			kernel, err := r.sample(ctx, cid, f.memTotal)
			require.NoError(t, err, "read from the kernel")
			assert.EqualValues(t, 64<<20, kernel.MemoryLimitBytes)
			assert.Positive(t, kernel.MemoryBytes)
			assert.Positive(t, kernel.CPUTime)
			assert.True(t, hasDevice(kernel.Interfaces, "lo"), "%+v", kernel.Interfaces)

			all, err := d.AllInstanceStats(ctx)
			require.NoError(t, err)
			require.Len(t, all, 1)
			assert.Equal(t, "bulk", all[0].ID)
			assert.EqualValues(t, 64<<20, all[0].MemoryLimitBytes)
			assert.GreaterOrEqual(t, all[0].CPUTime, kernel.CPUTime)

			engine, err := enginestats.Fetch(ctx, eng.Client, cid, enginestats.Options{})
			require.NoError(t, err)
			assert.EqualValues(t, 64<<20, engine.MemoryLimitBytes)
			if testenv.CgroupV2() {
				// cgroup v2 accounts every cgroup's block I/O (v1 only
				// where blk-throttle is active; see enginestats.BlockIO).
				for what, s := range map[string]stats.Instance{"kernel": kernel, "bulk": all[0], "engine": engine} {
					assert.GreaterOrEqual(t, s.BlockWriteBytes, uint64(8<<20), "%s: bytes written", what)
					assert.GreaterOrEqual(t, s.BlockReadBytes, uint64(8<<20), "%s: bytes read", what)
				}
			}
		})
	}
}

// waitConsoleOf waits (bounded) until instance id's console shows want.
func waitConsoleOf(t *testing.T, d *Driver, id, want string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	for {
		out, err := d.ConsoleOutput(ctx, id, hypervisor.ConsoleOptions{})
		if err == nil && strings.Contains(string(out), want) {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("console of %s never showed %q: %s (%v)", id, want, out, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
