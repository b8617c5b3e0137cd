package netnsdir_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/dockervisor/dockervisor/internal/netnsdir"
	"github.com/dockervisor/dockervisor/internal/testenv"
)

// childEnv marks the test binary's run in a mount namespace of its own.
const childEnv = "DOCKERVISOR_NETNSDIR_CHILD"

// TestDeleteAfterIPNetnsAdd: a namespace made by Create is deleted
// cleanly after `ip netns add` ran for the first time, which turns
// /run/netns into a mount point. It runs in a child process with a mount
// namespace of its own and a fresh /run (a tmpfs there), as on a host
// just booted, so the host's /run/netns is never touched.
func TestDeleteAfterIPNetnsAdd(t *testing.T) {
	if os.Getenv(childEnv) != "" {
		inFreshRun(t)
		return
	}
	testenv.MustHaveRoot(t)
	if _, err := exec.LookPath("ip"); err != nil {
		testenv.Missing(t, "ip (iproute2): %v", err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestDeleteAfterIPNetnsAdd$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), childEnv+"=1")
	// Go makes the new mount namespace's mounts private.
	cmd.SysProcAttr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS, Pdeathsig: syscall.SIGKILL}
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "the child:\n%s", out)
	require.Contains(t, string(out), "--- PASS: TestDeleteAfterIPNetnsAdd", "the child ran no test:\n%s", out)
}

// inFreshRun runs in the child: the control case (a file bound the way
// the namespace library does it alone, before /run/netns is a mount
// point, cannot be removed after `ip netns add`), then Create's.
func inFreshRun(t *testing.T) {
	freshRun := func() {
		t.Helper()
		require.NoError(t, unix.Mount("tmpfs", "/run", "tmpfs", 0, "mode=755"))
		_, err := os.Stat(netnsdir.Dir)
		require.ErrorIs(t, err, os.ErrNotExist, "a fresh /run")
	}
	ipNetnsAdd := func(name string) {
		t.Helper()
		out, err := exec.Command("ip", "netns", "add", name).CombinedOutput()
		require.NoError(t, err, "ip netns add %s: %s", name, out)
	}

	// Control: the condition Create avoids, reproduced.
	freshRun()
	require.NoError(t, os.MkdirAll(netnsdir.Dir, 0o755))
	f, err := os.Create(netnsdir.Path("early"))
	require.NoError(t, err)
	require.NoError(t, f.Close())
	require.NoError(t, unix.Mount("/proc/thread-self/ns/net", netnsdir.Path("early"), "none", unix.MS_BIND, ""))
	ipNetnsAdd("other")
	err = netns.DeleteNamed("early")
	require.ErrorIs(t, err, unix.EBUSY, "control: a file bound before `ip netns add` made /run/netns a mount point")

	// Create: the same steps with a namespace of its own, on another
	// fresh /run.
	freshRun()
	require.NoError(t, netnsdir.Create("mine"))
	h, err := netns.GetFromPath(netnsdir.Path("mine"))
	require.NoError(t, err, "the namespace is bound")
	self, err := netns.GetFromPath("/proc/thread-self/ns/net")
	require.NoError(t, err)
	assert.False(t, h.Equal(self), "Create made a namespace of its own")
	require.NoError(t, h.Close())
	require.NoError(t, self.Close())
	ipNetnsAdd("other")
	require.NoError(t, netnsdir.Delete("mine"))
	_, err = os.Stat(netnsdir.Path("mine"))
	require.ErrorIs(t, err, os.ErrNotExist, "the file is gone")
	require.NoError(t, netnsdir.Delete("mine"), "deleting a missing namespace")
	out, err := exec.Command("ip", "netns", "del", "other").CombinedOutput()
	require.NoError(t, err, "ip netns del other: %s", out)

	// Prepare twice leaves one mount at /run/netns.
	require.NoError(t, netnsdir.Prepare())
	require.Equal(t, 1, mountsAt(t, netnsdir.Dir), "mounts at %s", netnsdir.Dir)
}

// mountsAt counts the mounts at dir on the top mount of its parent
// directory, in this thread's mount table (later lines are newer mounts).
func mountsAt(t *testing.T, dir string) int {
	t.Helper()
	data, err := os.ReadFile("/proc/thread-self/mountinfo")
	require.NoError(t, err)
	type entry struct {
		id, parent int
		point      string
	}
	var entries []entry
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		var e entry
		var devs, root string
		_, err := fmt.Sscan(line, &e.id, &e.parent, &devs, &root, &e.point)
		require.NoError(t, err, "mountinfo line %q", line)
		entries = append(entries, e)
	}
	top := -1
	for _, e := range entries {
		if e.point == filepath.Dir(dir) {
			top = e.id
		}
	}
	n := 0
	for _, e := range entries {
		if e.point == dir && e.parent == top {
			n++
		}
	}
	return n
}
