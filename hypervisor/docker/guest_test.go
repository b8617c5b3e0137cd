package docker

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"

	"github.com/dockervisor/dockervisor/configdrive"
	"github.com/dockervisor/dockervisor/hypervisor"
	"github.com/dockervisor/dockervisor/hypervisor/hypervisortest"
	"github.com/dockervisor/dockervisor/internal/testenv"
)

// consoleEcho answers every line typed into the console with "echo:
// <line>", and exits 0 on SIGTERM.
var consoleEcho = []string{"sh", "-c", `trap 'exit 0' TERM; while read -r l; do echo "echo: $l"; done`}

// busyboxExecCommands are the conformance suite's exec commands for the
// busybox test image.
func busyboxExecCommands() *hypervisortest.ExecCommands {
	return &hypervisortest.ExecCommands{
		Echo:     func(w ...string) []string { return append([]string{"echo"}, w...) },
		Stderr:   func(s string) []string { return []string{"sh", "-c", `echo "$1" >&2`, "sh", s} },
		Cat:      []string{"cat"},
		CatFile:  func(p string) []string { return []string{"cat", p} },
		PrintEnv: func(n string) []string { return []string{"sh", "-c", `echo "$` + n + `"`} },
		Pwd:      []string{"sh", "-c", "pwd"},
		UserID:   []string{"id", "-u"},
		Exit:     func(c int) []string { return []string{"sh", "-c", "exit " + strconv.Itoa(c)} },
		Sleep:    []string{"sleep", "3600"},
		TTY:      []string{"sh", "-c", `if [ -t 0 ]; then echo tty; else echo "not a tty"; fi`},
		Missing:  []string{"/no/such/binary"},
	}
}

func TestCRLFWriter(t *testing.T) {
	for _, c := range []struct {
		writes []string
		want   string
	}{
		{[]string{"a\r\nb\r\n"}, "a\nb\n"},
		{[]string{"a\r", "\nb"}, "a\nb"},
		{[]string{"a\r", "b"}, "a\rb"},
		{[]string{"progress 1\rprogress 2\r\n"}, "progress 1\rprogress 2\n"},
		{[]string{"end\r"}, "end\r"},
	} {
		var b bytes.Buffer
		w := &crlfWriter{w: &b}
		for _, s := range c.writes {
			n, err := w.Write([]byte(s))
			require.NoError(t, err)
			require.Equal(t, len(s), n)
		}
		require.NoError(t, w.Flush())
		assert.Equal(t, c.want, b.String(), "%q", c.writes)
	}
}

func TestMergeAuthorizedKeys(t *testing.T) {
	assert.Equal(t, "a\nb\nc\n", string(mergeAuthorizedKeys([]byte("a\nb"), []byte("b\nc\n"))))
	assert.Equal(t, "c\n", string(mergeAuthorizedKeys(nil, []byte("c\n"))))
	uid, gid, home, ok := lookupUser([]byte("root:x:0:0:root:/root:/bin/sh\nalice:x:1000:1001::/home/alice:/bin/sh\n"), "alice")
	assert.True(t, ok)
	assert.Equal(t, []any{1000, 1001, "/home/alice"}, []any{uid, gid, home})
	_, _, _, ok = lookupUser([]byte("root:x:0:0:root:/root:/bin/sh\n"), "bob")
	assert.False(t, ok)
}

// execOut runs args in the instance and returns its stdout.
func (e *env) execOut(id string, args ...string) string {
	e.t.Helper()
	var out, errb bytes.Buffer
	res, err := e.drv.Exec(e.t.Context(), id, hypervisor.ExecSpec{Args: args, Stdout: &out, Stderr: &errb})
	require.NoError(e.t, err)
	require.Equal(e.t, 0, res.ExitCode, "%q: %s", args, errb.String())
	return out.String()
}

// TestExecCancelKillsProcess: ending ctx kills the exec's process in the
// instance, with and without a terminal.
func TestExecCancelKillsProcess(t *testing.T) {
	e := newEnv(t)
	e.spawn(e.spec("cancel"))
	for _, tty := range []bool{false, true} {
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() {
			_, err := e.drv.Exec(ctx, "cancel", hypervisor.ExecSpec{Args: []string{"sleep", "4242"}, TTY: tty})
			done <- err
		}()
		require.Eventually(t, func() bool { return strings.Contains(e.execOut("cancel", "ps"), "sleep 4242") },
			10*time.Second, 50*time.Millisecond, "the exec runs")
		cancel()
		select {
		case err := <-done:
			assert.ErrorIs(t, err, context.Canceled)
		case <-time.After(20 * time.Second):
			t.Fatal("cancelled exec did not return")
		}
		assert.Eventually(t, func() bool { return !strings.Contains(e.execOut("cancel", "ps"), "sleep 4242") },
			10*time.Second, 50*time.Millisecond, "the cancelled exec's process is gone (tty %v)", tty)
	}
	assert.Equal(t, hypervisor.StateRunning, e.state("cancel"))
}

// TestExecTTYResize: a terminal exec sees its initial size and a resize.
func TestExecTTYResize(t *testing.T) {
	e := newEnv(t)
	e.spawn(e.spec("tty"))
	out := &syncBuffer{}
	resize := make(chan hypervisor.TerminalSize, 1)
	pr, pw := io.Pipe()
	go func() {
		// Resize once the first stty has shown the initial size, then let
		// the script go on: it asks again until the size changes, so the
		// resize may land whenever the engine gets to it.
		for i := 0; i < 600 && !strings.Contains(out.String(), "21 77"); i++ {
			time.Sleep(50 * time.Millisecond)
		}
		resize <- hypervisor.TerminalSize{Rows: 33, Cols: 111}
		_, _ = io.WriteString(pw, "go\n")
		pw.Close()
	}()
	res, err := e.drv.Exec(t.Context(), "tty", hypervisor.ExecSpec{
		// Each stty waits (at most 10 s) for its size to land: Docker 20.10
		// sets the initial size only once the process has started, and
		// stty fails on the terminal for its first moments.
		Args: []string{"sh", "-c", `size() { i=0; while [ $i -lt 200 ]; do s=$(busybox stty size 2>/dev/null); [ -n "$s" ] && [ "$s" != "$1" ] && break; sleep 0.05; i=$((i+1)); done; busybox stty size; }
size "0 0"; read x; size "21 77"`},
		TTY:   true,
		Size:  hypervisor.TerminalSize{Rows: 21, Cols: 77},
		Stdin: pr, Stdout: out, Resize: resize,
	})
	require.NoError(t, err)
	assert.Equal(t, 0, res.ExitCode)
	s := strings.ReplaceAll(out.String(), "\r", "")
	assert.Contains(t, s, "21 77\n")
	assert.Contains(t, s, "33 111\n")
}

// syncBuffer is a bytes.Buffer that one goroutine writes while another
// reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestConsoleAttachSeesOutput: an attached console sees what the instance's
// main process prints on its own, takes input, and the console log (now a
// terminal's) reads as before.
func TestConsoleAttachSeesOutput(t *testing.T) {
	e := newEnv(t)
	spec := e.spec("conout")
	spec.Command = []string{"sh", "-c", `trap 'exit 0' TERM; i=0; while :; do i=$((i+1)); echo "tick $i"; read -t 0.2 l && echo "typed: $l"; done`}
	e.spawn(spec)
	con, err := e.drv.AttachConsole(t.Context(), "conout", hypervisor.ConsoleAttachOptions{Size: hypervisor.TerminalSize{Rows: 25, Cols: 80}})
	require.NoError(t, err)
	defer con.Close()
	readConsoleUntil(t, con, "tick")
	_, err = io.WriteString(con, "hello console\n")
	require.NoError(t, err)
	readConsoleUntil(t, con, "typed: hello console")
	require.NoError(t, con.Close())
	time.Sleep(300 * time.Millisecond)
	assert.Equal(t, hypervisor.StateRunning, e.state("conout"), "detach does not stop the instance")
	log, err := e.drv.ConsoleOutput(t.Context(), "conout", hypervisor.ConsoleOptions{})
	require.NoError(t, err)
	assert.Contains(t, string(log), "typed: hello console\n")
	assert.NotContains(t, string(log), "\r\n", "terminal line ends are normalised")
}

func readConsoleUntil(t *testing.T, r io.Reader, want string) {
	t.Helper()
	var seen bytes.Buffer
	deadline := time.Now().Add(20 * time.Second)
	buf := make([]byte, 1024)
	for !strings.Contains(seen.String(), want) {
		require.True(t, time.Now().Before(deadline), "console never showed %q: %q", want, seen.String())
		n, err := r.Read(buf)
		seen.Write(buf[:n])
		require.NoError(t, err)
	}
}

// TestConfigDriveCloudInit: cloud-init's own reader parses the tree the
// driver keeps for an instance spawned with every boot data field set,
// the guest reads the same files at configdrive.SeedDir, read-only, and
// the tree goes with the instance.
func TestConfigDriveCloudInit(t *testing.T) {
	py := testenv.MustHaveCloudInit(t)
	e := newEnv(t)
	spec := e.spec("cdci")
	spec.Metadata = map[string]string{"role": "web"}
	spec.UserData = []byte("#cloud-config\nruncmd:\n  - echo hi\n")
	spec.SSHKeys = []hypervisor.SSHKey{{Name: "k1", Data: sshKey(t)}, {Name: "k2", Data: sshKey(t)}}
	spec.AdminPassword = "pw-123"
	spec.Files = []hypervisor.File{{Path: "/etc/motd", Content: []byte("motd\n")}}
	spec.AuthorizedKeysUser = "root"
	e.spawn(spec)

	out, err := exec.CommandContext(t.Context(), py, "../../configdrive/testdata/read_config_drive.py", e.drv.state.configDriveDir("cdci")).Output()
	require.NoError(t, err)
	var v struct {
		UserData  []byte            `json:"userdata"`
		UUID      string            `json:"uuid"`
		Hostname  string            `json:"local_hostname"`
		Meta      map[string]string `json:"meta"`
		AdminPass string            `json:"admin_pass"`
		Keys      []string          `json:"keys"`
		Files     map[string][]byte `json:"files"`
	}
	require.NoError(t, json.Unmarshal(out, &v), "%s", out)
	assert.Equal(t, spec.UserData, v.UserData)
	assert.Equal(t, "cdci", v.UUID)
	assert.Equal(t, spec.Hostname()+".novalocal", v.Hostname, "with Nova's default dhcp_domain")
	assert.Equal(t, spec.Metadata, v.Meta)
	assert.Equal(t, "pw-123", v.AdminPass)
	assert.ElementsMatch(t, []string{spec.SSHKeys[0].Data, spec.SSHKeys[1].Data}, v.Keys)
	assert.Equal(t, map[string][]byte{"/etc/motd": []byte("motd\n")}, v.Files)

	// Inside: the same bytes, on a read-only mount.
	assert.Equal(t, string(spec.UserData), e.execOut("cdci", "cat", configdrive.SeedDir+"/openstack/latest/user_data"))
	res, err := e.drv.Exec(t.Context(), "cdci", hypervisor.ExecSpec{Args: []string{"touch", configdrive.SeedDir + "/x"}})
	require.NoError(t, err)
	assert.NotEqual(t, 0, res.ExitCode, "the config drive is read-only in the guest")
	ls := e.execOut("cdci", "ls", "-lna", "/root/.ssh")
	assert.Regexp(t, `drwx------\s+\d+\s+0\s+0\s.*\s\.\n`, ls, "~/.ssh is 0700 root's")
	assert.Regexp(t, `-rw-------\s+1\s+0\s+0\s.*authorized_keys`, ls, "authorized_keys is 0600 root's")

	require.NoError(t, e.drv.Destroy(t.Context(), "cdci"))
	_, err = os.Stat(e.drv.state.configDriveDir("cdci"))
	assert.ErrorIs(t, err, os.ErrNotExist, "the config drive goes with the instance")
	_, ok, err := e.drv.state.boot.Load("cdci")
	require.NoError(t, err)
	assert.False(t, ok, "the boot data goes with the instance")
}

// TestAuthorizedKeysUnknownUser: a user missing from the image fails the
// spawn, which leaves nothing behind.
func TestAuthorizedKeysUnknownUser(t *testing.T) {
	e := newEnv(t)
	spec := e.spec("nouser")
	spec.SSHKeys = []hypervisor.SSHKey{{Data: sshKey(t)}}
	spec.AuthorizedKeysUser = "alice"
	_, err := e.drv.Spawn(t.Context(), spec)
	require.ErrorIs(t, err, hypervisor.ErrInvalidArgument)
	assert.Equal(t, 0, e.containersNamed(e.drv.containerName("nouser")))
	_, err = os.Stat(e.drv.state.configDriveDir("nouser"))
	assert.ErrorIs(t, err, os.ErrNotExist)
	_, ok, err := e.drv.state.boot.Load("nouser")
	require.NoError(t, err)
	assert.False(t, ok, "no boot data left")
	_, ok, err = e.drv.state.instances.Load("nouser")
	require.NoError(t, err)
	assert.False(t, ok, "no instance record left")
}

func sshKey(t *testing.T) string {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	sk, err := ssh.NewPublicKey(pub)
	require.NoError(t, err)
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sk))) + " test@host"
}
