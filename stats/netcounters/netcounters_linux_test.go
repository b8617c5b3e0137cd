package netcounters

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dockervisor/dockervisor/internal/testenv"
	"github.com/dockervisor/dockervisor/network"
	"github.com/dockervisor/dockervisor/stats"
)

func mustRoot(t *testing.T) {
	t.Helper()
	testenv.MustHaveRoot(t) // CAP_SYS_ADMIN to bind a handle to another namespace
}

func TestInterfaceCountersOwnNamespace(t *testing.T) {
	mustRoot(t)
	ifs, err := InterfaceCounters(t.Context(), "/proc/self/ns/net")
	require.NoError(t, err)
	want, err := net.Interfaces()
	require.NoError(t, err)
	var wantNames, gotNames []string
	for _, i := range want {
		wantNames = append(wantNames, i.Name)
	}
	for _, i := range ifs {
		gotNames = append(gotNames, i.Device)
	}
	require.ElementsMatch(t, wantNames, gotNames)
	require.Contains(t, gotNames, "lo")
}

// newNetns creates a named network namespace with `ip netns add` and
// deletes it when the test ends. It returns its path under /run/netns.
func newNetns(t *testing.T) (name, path string) {
	t.Helper()
	mustRoot(t)
	if _, err := exec.LookPath("ip"); err != nil {
		testenv.Missing(t, "ip (iproute2) not installed")
	}
	name = testenv.UniqueName("dvstats")
	run(t, "ip", "netns", "add", name)
	t.Cleanup(func() {
		if _, err := os.Stat(filepath.Join("/run/netns", name)); err != nil {
			return // the test deleted it
		}
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			t.Errorf("cleanup: ip netns del %s: %v: %s", name, err, out)
		}
	})
	return name, filepath.Join("/run/netns", name)
}

func run(t *testing.T, args ...string) {
	t.Helper()
	out, err := exec.CommandContext(t.Context(), args[0], args[1:]...).CombinedOutput()
	require.NoError(t, err, "%v: %s", args, out)
}

func TestInterfaceCountersPrivateNamespace(t *testing.T) {
	name, path := newNetns(t)
	ifs, err := InterfaceCounters(t.Context(), path)
	require.NoError(t, err)
	require.Equal(t, []stats.Interface{{Device: "lo"}}, ifs, "fresh namespace: only lo, no traffic")

	run(t, "ip", "-n", name, "link", "set", "lo", "up")
	bb, err := exec.LookPath("busybox")
	if err != nil {
		testenv.Missing(t, "busybox (busybox-static) not installed")
	}
	run(t, "ip", "netns", "exec", name, bb, "ping", "-c", "3", "127.0.0.1")

	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	ifs, err = InterfaceCountersAt(t.Context(), f)
	require.NoError(t, err)
	require.Len(t, ifs, 1)
	lo := ifs[0]
	require.Equal(t, "lo", lo.Device)
	require.GreaterOrEqual(t, lo.RxPackets, uint64(6), "3 echo requests and 3 replies") // both cross lo
	require.Equal(t, lo.RxPackets, lo.TxPackets)
	require.Equal(t, lo.RxBytes, lo.TxBytes)
	require.GreaterOrEqual(t, lo.RxBytes, 6*uint64(84))
}

func TestInterfaceCountersNamespaceGone(t *testing.T) {
	mustRoot(t)
	t.Run("deleted netns", func(t *testing.T) {
		name, path := newNetns(t)
		run(t, "ip", "netns", "del", name)
		_, err := InterfaceCounters(t.Context(), path)
		require.ErrorIs(t, err, network.ErrNamespaceGone)
	})
	t.Run("exited process", func(t *testing.T) {
		cmd := exec.CommandContext(t.Context(), "true")
		require.NoError(t, cmd.Run())
		_, err := InterfaceCounters(t.Context(), filepath.Join("/proc", strconv.Itoa(cmd.Process.Pid), "ns", "net"))
		require.ErrorIs(t, err, network.ErrNamespaceGone)
	})
	t.Run("not a namespace", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "leftover")
		require.NoError(t, os.WriteFile(p, nil, 0o600))
		_, err := InterfaceCounters(t.Context(), p)
		require.ErrorIs(t, err, network.ErrNamespaceGone)
	})
}

func TestInterfaceCountersCanceled(t *testing.T) {
	mustRoot(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := InterfaceCounters(ctx, "/proc/self/ns/net")
	require.ErrorIs(t, err, context.Canceled)
}

// TestInterfaceCountersManyLinks makes the dump span several netlink
// datagrams.
func TestInterfaceCountersManyLinks(t *testing.T) {
	name, path := newNetns(t)
	const pairs = 60
	var batch strings.Builder
	for i := range pairs {
		fmt.Fprintf(&batch, "link add va%d type veth peer name vb%d\n", i, i)
	}
	cmd := exec.CommandContext(t.Context(), "ip", "-n", name, "-batch", "-")
	cmd.Stdin = strings.NewReader(batch.String())
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)

	ifs, err := InterfaceCounters(t.Context(), path)
	require.NoError(t, err)
	require.Len(t, ifs, 1+2*pairs)
	seen := map[string]bool{}
	for _, i := range ifs {
		seen[i.Device] = true
	}
	require.True(t, seen["lo"])
	for i := range pairs {
		require.True(t, seen[fmt.Sprintf("va%d", i)] && seen[fmt.Sprintf("vb%d", i)], "pair %d", i)
	}
}
