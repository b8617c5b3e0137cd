package enginestats

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/blkiodev"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/dockervisor/dockervisor/internal/testenv"
	"github.com/dockervisor/dockervisor/network"
	"github.com/dockervisor/dockervisor/stats"
	"github.com/dockervisor/dockervisor/stats/netcounters"
	"github.com/dockervisor/dockervisor/stats/procfs"
)

// startContainer creates and starts a busybox container without network
// that runs cmd, and removes it when the test ends.
func startContainer(t *testing.T, cli *client.Client, image string, hc container.HostConfig, cmd ...string) string {
	t.Helper()
	ctx := t.Context()
	hc.NetworkMode = "none"
	res, err := cli.ContainerCreate(ctx, client.ContainerCreateOptions{
		Image:      image,
		Config:     &container.Config{Cmd: cmd},
		HostConfig: &hc,
	})
	require.NoError(t, err)
	testenv.RemoveContainerOnCleanup(t, cli, res.ID)
	_, err = cli.ContainerStart(ctx, res.ID, client.ContainerStartOptions{})
	require.NoError(t, err)
	return res.ID
}

// execIn runs cmd in the running container and waits for it to end.
func execIn(t *testing.T, cli *client.Client, id string, cmd ...string) {
	t.Helper()
	ctx := t.Context()
	ex, err := cli.ExecCreate(ctx, id, client.ExecCreateOptions{Cmd: cmd, AttachStdout: true, AttachStderr: true})
	require.NoError(t, err)
	att, err := cli.ExecAttach(ctx, ex.ID, client.ExecAttachOptions{})
	require.NoError(t, err)
	out, err := io.ReadAll(att.Reader) // EOF when the command has ended
	att.Close()
	require.NoError(t, err)
	ins, err := cli.ExecInspect(ctx, ex.ID, client.ExecInspectOptions{})
	require.NoError(t, err)
	require.False(t, ins.Running)
	require.Zero(t, ins.ExitCode, "%v: %s", cmd, out)
}

// pollUntil fetches one-shot samples until ok accepts one or the test's
// deadline (bounded by limit) passes. It asserts nothing about time.
func pollUntil(t *testing.T, cli *client.Client, id string, limit time.Duration, ok func(stats.Instance) bool) stats.Instance {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), limit)
	defer cancel()
	for {
		in, err := Fetch(ctx, cli, id, Options{})
		if err == nil && ok(in) {
			return in
		}
		select {
		case <-ctx.Done():
			require.NoError(t, err)
			t.Fatalf("condition not met within %s; last sample %+v", limit, in)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func TestFetchMemoryLimit(t *testing.T) {
	cli := testenv.MustHaveDocker(t)
	img := testenv.BusyboxImage(t)
	limited := startContainer(t, cli, img, container.HostConfig{Resources: container.Resources{Memory: 64 << 20}}, "sleep", "3600")
	unlimited := startContainer(t, cli, img, container.HostConfig{}, "sleep", "3600")

	in, err := Fetch(t.Context(), cli, limited, Options{})
	require.NoError(t, err)
	require.Equal(t, limited, in.ID)
	require.Equal(t, uint64(64<<20), in.MemoryLimitBytes)
	require.Positive(t, in.MemoryBytes)
	require.Less(t, in.MemoryBytes, in.MemoryLimitBytes)
	require.False(t, in.Time.IsZero())

	// Without a limit the engine reports the host's memory.
	in, err = Fetch(t.Context(), cli, unlimited, Options{})
	require.NoError(t, err)
	host, err := procfs.ReadHostMemory()
	require.NoError(t, err)
	require.Equal(t, host.TotalBytes, in.MemoryLimitBytes)
}

func TestFetchCPUBusyVersusIdle(t *testing.T) {
	cli := testenv.MustHaveDocker(t)
	img := testenv.BusyboxImage(t)
	idle := startContainer(t, cli, img, container.HostConfig{}, "sleep", "3600")
	// Half a CPU at most: enough to tell busy from idle, and the loop
	// leaves the rest to the tests beside it (the kernel lane's guest is
	// CPU-bound).
	busy := startContainer(t, cli, img, container.HostConfig{Resources: container.Resources{NanoCPUs: 5e8}}, "sh", "-c", "while :; do :; done")

	first, err := Fetch(t.Context(), cli, busy, Options{})
	require.NoError(t, err)
	// The busy loop accumulates CPU time: wait (bounded) for 200 ms more.
	later := pollUntil(t, cli, busy, time.Minute, func(in stats.Instance) bool {
		return in.CPUTime >= first.CPUTime+200*time.Millisecond
	})
	require.Greater(t, later.CPUTime, first.CPUTime)
	require.True(t, later.Time.After(first.Time))
	require.Greater(t, stats.CPUPercent(first.CPUPoint(), later.CPUPoint()), 0.0)

	// With the engine's previous sample both get a CPUPercent; compare them.
	b, err := Fetch(t.Context(), cli, busy, Options{IncludePreviousSample: true})
	require.NoError(t, err)
	i, err := Fetch(t.Context(), cli, idle, Options{IncludePreviousSample: true})
	require.NoError(t, err)
	t.Logf("busy %.1f%% (cpu %s), idle %.1f%% (cpu %s)", b.CPUPercent, b.CPUTime, i.CPUPercent, i.CPUTime)
	require.Greater(t, b.CPUPercent, 10.0)
	require.Greater(t, b.CPUPercent, 5*i.CPUPercent+1)
	require.LessOrEqual(t, b.CPUPercent, 100*float64(procfs.NumCPU())+1)
	require.Greater(t, b.CPUTime, i.CPUTime)
}

// dataRootDisk returns the whole-disk device node (/dev/vda) under the
// engine's data root, for a throttle rule.
func dataRootDisk(t *testing.T, cli *client.Client) string {
	t.Helper()
	info, err := cli.Info(t.Context(), client.InfoOptions{})
	require.NoError(t, err)
	var st unix.Stat_t
	require.NoError(t, unix.Stat(info.Info.DockerRootDir, &st))
	sys := fmt.Sprintf("/sys/dev/block/%d:%d", unix.Major(st.Dev), unix.Minor(st.Dev))
	dir, err := filepath.EvalSymlinks(sys)
	if err != nil {
		t.Skipf("data root %s is not on a block device (%v)", info.Info.DockerRootDir, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "partition")); err == nil {
		dir = filepath.Dir(dir) // throttle rules apply to whole disks
	}
	dev := "/dev/" + filepath.Base(dir)
	if _, err := os.Stat(dev); err != nil {
		t.Skipf("no device node for the data root: %v", err)
	}
	return dev
}

// TestFetchBlockIO needs a throttle rule on the container: on this cgroup
// v1 host the kernel accounts a cgroup's block I/O only on devices where
// blk-throttle is active, so without a rule io_service_bytes_recursive is
// empty. The rule's rate (10 GB/s) throttles nothing.
func TestFetchBlockIO(t *testing.T) {
	cli := testenv.MustHaveDocker(t)
	img := testenv.BusyboxImage(t)
	dev := dataRootDisk(t, cli)
	const rate = 10 << 30
	id := startContainer(t, cli, img, container.HostConfig{Resources: container.Resources{
		BlkioDeviceWriteBps: []*blkiodev.ThrottleDevice{{Path: dev, Rate: rate}},
		BlkioDeviceReadBps:  []*blkiodev.ThrottleDevice{{Path: dev, Rate: rate}},
	}}, "sleep", "3600")

	before, err := Fetch(t.Context(), cli, id, Options{})
	require.NoError(t, err)
	execIn(t, cli, id, "dd", "if=/dev/zero", "of=/tmp/x", "bs=1M", "count=20", "oflag=direct")
	after, err := Fetch(t.Context(), cli, id, Options{})
	require.NoError(t, err)
	t.Logf("%s: write %d -> %d bytes", dev, before.BlockWriteBytes, after.BlockWriteBytes)
	require.GreaterOrEqual(t, after.BlockWriteBytes, before.BlockWriteBytes+20<<20)

	execIn(t, cli, id, "dd", "if=/tmp/x", "of=/dev/null", "bs=1M", "iflag=direct")
	read, err := Fetch(t.Context(), cli, id, Options{})
	require.NoError(t, err)
	require.GreaterOrEqual(t, read.BlockReadBytes, after.BlockReadBytes+20<<20)
}

func TestFetchNotFound(t *testing.T) {
	cli := testenv.MustHaveDocker(t)
	_, err := Fetch(t.Context(), cli, "dockervisor-no-such-container-"+strconv.Itoa(os.Getpid()), Options{})
	require.Error(t, err)
	require.True(t, cerrdefs.IsNotFound(err), "%v", err)
}

func TestContainerInterfaceCounters(t *testing.T) {
	cli := testenv.MustHaveDocker(t)
	img := testenv.BusyboxImage(t)
	id := startContainer(t, cli, img, container.HostConfig{}, "sleep", "3600")
	ins, err := cli.ContainerInspect(t.Context(), id, client.ContainerInspectOptions{})
	require.NoError(t, err)
	pid := ins.Container.State.Pid
	require.Positive(t, pid)

	// Hold the namespace open across both reads, as a pid can be reused.
	ns, err := os.Open(fmt.Sprintf("/proc/%d/ns/net", pid))
	require.NoError(t, err)
	defer ns.Close()

	before, err := netcounters.InterfaceCountersAt(t.Context(), ns)
	require.NoError(t, err)
	require.Len(t, before, 1, "NetworkMode none: loopback only")
	require.Equal(t, "lo", before[0].Device)

	execIn(t, cli, id, "ping", "-c", "5", "-i", "0.2", "127.0.0.1")

	after, err := netcounters.InterfaceCounters(t.Context(), fmt.Sprintf("/proc/%d/ns/net", pid))
	require.NoError(t, err)
	require.Len(t, after, 1)
	// 5 requests and 5 replies, each sent and received on lo.
	require.GreaterOrEqual(t, after[0].RxPackets, before[0].RxPackets+10)
	require.GreaterOrEqual(t, after[0].TxPackets, before[0].TxPackets+10)
	require.GreaterOrEqual(t, after[0].RxBytes, before[0].RxBytes+10*84)

	// The engine sees no networks of its own here.
	in, err := Fetch(t.Context(), cli, id, Options{})
	require.NoError(t, err)
	require.Empty(t, in.Interfaces)

	// Once the container is gone, so is the namespace (for new opens).
	_, err = cli.ContainerRemove(t.Context(), id, client.ContainerRemoveOptions{Force: true})
	require.NoError(t, err)
	_, err = netcounters.InterfaceCounters(t.Context(), fmt.Sprintf("/proc/%d/ns/net", pid))
	require.ErrorIs(t, err, network.ErrNamespaceGone)
	// The held file keeps the namespace alive and readable until closed.
	held, err := netcounters.InterfaceCountersAt(t.Context(), ns)
	require.NoError(t, err)
	require.Len(t, held, 1)
	require.Equal(t, "lo", held[0].Device)
}

func TestFetchNotRunning(t *testing.T) {
	cli := testenv.MustHaveDocker(t)
	img := testenv.BusyboxImage(t)
	res, err := cli.ContainerCreate(t.Context(), client.ContainerCreateOptions{
		Image:      img,
		Config:     &container.Config{Cmd: []string{"true"}},
		HostConfig: &container.HostConfig{NetworkMode: "none"},
	})
	require.NoError(t, err)
	testenv.RemoveContainerOnCleanup(t, cli, res.ID)
	in, err := Fetch(t.Context(), cli, res.ID, Options{})
	require.NoError(t, err)
	require.True(t, in.Time.IsZero(), "a container that never ran has no read time: %+v", in)
	require.Zero(t, in.CPUTime)
	require.Zero(t, in.MemoryBytes)
}
