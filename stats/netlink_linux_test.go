package stats

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// nlAttr encodes one netlink attribute, padded to 4 bytes.
func nlAttr(typ uint16, v []byte) []byte {
	b := make([]byte, nlAlign(4+len(v)))
	binary.NativeEndian.PutUint16(b[0:], uint16(4+len(v)))
	binary.NativeEndian.PutUint16(b[2:], typ)
	copy(b[4:], v)
	return b
}

// nlMsg encodes one netlink message with the given payload.
func nlMsg(typ uint16, seq uint32, payload []byte) []byte {
	b := make([]byte, nlAlign(unix.SizeofNlMsghdr+len(payload)))
	binary.NativeEndian.PutUint32(b[0:], uint32(unix.SizeofNlMsghdr+len(payload)))
	binary.NativeEndian.PutUint16(b[4:], typ)
	binary.NativeEndian.PutUint16(b[6:], unix.NLM_F_MULTI)
	binary.NativeEndian.PutUint32(b[8:], seq)
	copy(b[unix.SizeofNlMsghdr:], payload)
	return b
}

func newLinkMsg(seq uint32, name string, stats64 []uint64, stats32 []uint32) []byte {
	p := make([]byte, unix.SizeofIfInfomsg)
	p = append(p, nlAttr(unix.IFLA_IFNAME, append([]byte(name), 0))...)
	p = append(p, nlAttr(unix.IFLA_MTU, []byte{0, 5, 0, 0})...)
	if stats32 != nil {
		v := make([]byte, 4*len(stats32))
		for i, x := range stats32 {
			binary.NativeEndian.PutUint32(v[4*i:], x)
		}
		p = append(p, nlAttr(unix.IFLA_STATS, v)...)
	}
	if stats64 != nil {
		v := make([]byte, 8*len(stats64))
		for i, x := range stats64 {
			binary.NativeEndian.PutUint64(v[8*i:], x)
		}
		p = append(p, nlAttr(unix.IFLA_STATS64|unix.NLA_F_NESTED, v)...)
	}
	return nlMsg(unix.RTM_NEWLINK, seq, p)
}

func TestParseLinkMessages(t *testing.T) {
	s64 := make([]uint64, 24) // rtnl_link_stats64 has more than 8 fields
	for i := range 8 {
		s64[i] = uint64(i+1) << 33 // beyond 32 bits
	}
	s32 := []uint32{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	var b []byte
	b = append(b, newLinkMsg(1, "lo", s64, s32)...)
	b = append(b, newLinkMsg(99, "other-dump", s64, nil)...) // another sequence: ignored
	b = append(b, newLinkMsg(1, "eth0", nil, s32)...)
	ifs, done, intr, err := parseLinkMessages(b, 1)
	require.NoError(t, err)
	require.False(t, done)
	require.False(t, intr)
	require.Equal(t, []Interface{
		{Device: "lo", RxPackets: 1 << 33, TxPackets: 2 << 33, RxBytes: 3 << 33, TxBytes: 4 << 33, RxErrors: 5 << 33, TxErrors: 6 << 33, RxDropped: 7 << 33, TxDropped: 8 << 33},
		{Device: "eth0", RxPackets: 1, TxPackets: 2, RxBytes: 3, TxBytes: 4, RxErrors: 5, TxErrors: 6, RxDropped: 7, TxDropped: 8},
	}, ifs)

	ifs, done, intr, err = parseLinkMessages(nlMsg(unix.NLMSG_DONE, 1, []byte{0, 0, 0, 0}), 1)
	require.NoError(t, err)
	require.True(t, done)
	require.False(t, intr)
	require.Empty(t, ifs)

	// A dump that links changed during is flagged for a retry.
	m := newLinkMsg(1, "lo", s64, nil)
	binary.NativeEndian.PutUint16(m[6:], unix.NLM_F_MULTI|unix.NLM_F_DUMP_INTR)
	ifs, done, intr, err = parseLinkMessages(append(m, nlMsg(unix.NLMSG_DONE, 1, []byte{0, 0, 0, 0})...), 1)
	require.NoError(t, err)
	require.True(t, done)
	require.True(t, intr)
	require.Len(t, ifs, 1)
}

func TestParseLinkMessagesErrors(t *testing.T) {
	errno := make([]byte, 4)
	e := -int32(unix.EPERM)
	binary.NativeEndian.PutUint32(errno, uint32(e))
	_, _, _, err := parseLinkMessages(nlMsg(unix.NLMSG_ERROR, 1, errno), 1)
	require.ErrorIs(t, err, unix.EPERM)

	good := newLinkMsg(1, "lo", make([]uint64, 8), nil)
	for name, b := range map[string][]byte{
		"length beyond buffer": good[:len(good)-8],
		"short ifinfomsg":      nlMsg(unix.RTM_NEWLINK, 1, []byte{1, 2, 3}),
		"short stats64":        nlMsg(unix.RTM_NEWLINK, 1, append(make([]byte, unix.SizeofIfInfomsg), nlAttr(unix.IFLA_STATS64, make([]byte, 16))...)),
		"bad attribute length": nlMsg(unix.RTM_NEWLINK, 1, append(make([]byte, unix.SizeofIfInfomsg), 0xff, 0, 3, 0)),
		"short error":          nlMsg(unix.NLMSG_ERROR, 1, []byte{1}),
	} {
		t.Run(name, func(t *testing.T) {
			_, _, _, err := parseLinkMessages(b, 1)
			require.ErrorIs(t, err, ErrMalformed)
		})
	}
}

func TestAttachPortIDs(t *testing.T) {
	ifs := []Interface{{Device: "lo"}, {Device: "eth0"}, {Device: "eth1"}}
	AttachPortIDs(ifs, map[string]string{"eth0": "port-a", "eth1": "port-b", "eth9": "port-x"})
	require.Equal(t, []Interface{{Device: "lo"}, {Device: "eth0", PortID: "port-a"}, {Device: "eth1", PortID: "port-b"}}, ifs)
}

func mustRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (CAP_SYS_ADMIN for setns)")
	}
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
		t.Skip("ip (iproute2) not installed")
	}
	var b [4]byte
	_, _ = unix.Getrandom(b[:], 0)
	name = "dvstats" + strconv.FormatUint(uint64(binary.NativeEndian.Uint32(b[:])), 16)
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
	require.Equal(t, []Interface{{Device: "lo"}}, ifs, "fresh namespace: only lo, no traffic")

	run(t, "ip", "-n", name, "link", "set", "lo", "up")
	bb, err := exec.LookPath("busybox")
	if err != nil {
		t.Skip("busybox not installed")
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
		require.ErrorIs(t, err, ErrNamespaceGone)
	})
	t.Run("exited process", func(t *testing.T) {
		cmd := exec.CommandContext(t.Context(), "true")
		require.NoError(t, cmd.Run())
		_, err := InterfaceCounters(t.Context(), filepath.Join("/proc", strconv.Itoa(cmd.Process.Pid), "ns", "net"))
		require.ErrorIs(t, err, ErrNamespaceGone)
	})
	t.Run("not a namespace", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "leftover")
		require.NoError(t, os.WriteFile(p, nil, 0o600))
		_, err := InterfaceCounters(t.Context(), p)
		require.ErrorIs(t, err, ErrNamespaceGone)
		require.ErrorIs(t, err, unix.EINVAL)
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
