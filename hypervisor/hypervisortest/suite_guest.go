package hypervisortest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"

	"github.com/dockervisor/dockervisor/configdrive"
	"github.com/dockervisor/dockervisor/hypervisor"
)

// ExecCommands names, for one backend's image, the commands the exec and
// config drive checks of [TestDriver] run. Each must behave as documented.
type ExecCommands struct {
	// Echo writes its words joined by spaces and a newline to stdout.
	Echo func(words ...string) []string
	// Stderr writes s and a newline to stderr.
	Stderr func(s string) []string
	// Cat copies stdin to stdout until end of input.
	Cat []string
	// CatFile writes the file at path to stdout.
	CatFile func(path string) []string
	// PrintEnv writes the value of variable name and a newline.
	PrintEnv func(name string) []string
	// Pwd writes the working directory and a newline.
	Pwd []string
	// UserID writes the numeric user ID and a newline.
	UserID []string
	// Exit exits with status code.
	Exit func(code int) []string
	// Sleep runs until killed.
	Sleep []string
	// TTY writes "tty" when stdin is a terminal, else "not a tty".
	TTY []string
	// Missing names a binary that does not exist.
	Missing []string
}

// FakeExecCommands returns the [ExecCommands] of a Fake's programs.
func FakeExecCommands() *ExecCommands {
	return &ExecCommands{
		Echo:     func(w ...string) []string { return append([]string{"echo"}, w...) },
		Stderr:   func(s string) []string { return []string{"stderr", s} },
		Cat:      []string{"cat"},
		CatFile:  func(p string) []string { return []string{"cat", p} },
		PrintEnv: func(n string) []string { return []string{"printenv", n} },
		Pwd:      []string{"pwd"},
		UserID:   []string{"id", "-u"},
		Exit:     func(c int) []string { return []string{"exit", itoa(c)} },
		Sleep:    []string{"sleep"},
		TTY:      []string{"tty"},
		Missing:  []string{"/no/such/binary"},
	}
}

func itoa(i int) string { b, _ := json.Marshal(i); return string(b) }

// run execs args in id and returns stdout, stderr and the exit code.
func (e *env) execOut(t *testing.T, id string, spec hypervisor.ExecSpec) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	spec.Stdout, spec.Stderr = &out, &errb
	res, err := e.d.Exec(t.Context(), id, spec)
	require.NoError(t, err, "Exec(%q, %q)", id, spec.Args)
	return out.String(), errb.String(), res.ExitCode
}

// tidy removes a terminal's carriage returns and the final newline.
func tidy(s string) string { return strings.TrimSuffix(strings.ReplaceAll(s, "\r", ""), "\n") }

func (e *env) skipUnlessExec(t *testing.T) *ExecCommands {
	t.Helper()
	if !e.caps.Exec {
		_, err := e.d.Exec(t.Context(), newID("x"), hypervisor.ExecSpec{Args: []string{"true"}})
		assert.ErrorIs(t, err, hypervisor.ErrNotSupported, "Exec without the Exec capability")
		t.Skip("driver cannot exec")
	}
	if e.h.Exec == nil {
		t.Skip("harness has no exec commands")
	}
	return e.h.Exec
}

func testExec(t *testing.T, e *env) {
	x := e.skipUnlessExec(t)
	spec := e.spec("exec")
	spec.Env = map[string]string{"FROM_SPEC": "spec-value"}
	id := e.spawn(t, spec).ID
	ctx := t.Context()

	out, errs, code := e.execOut(t, id, hypervisor.ExecSpec{Args: x.Echo("hello", "world")})
	assert.Equal(t, "hello world\n", out)
	assert.Empty(t, errs)
	assert.Equal(t, 0, code)

	out, errs, _ = e.execOut(t, id, hypervisor.ExecSpec{Args: x.Stderr("to-stderr")})
	assert.Empty(t, out, "stderr is not stdout")
	assert.Equal(t, "to-stderr\n", errs)

	for _, c := range []int{1, 3, 42} {
		_, _, code = e.execOut(t, id, hypervisor.ExecSpec{Args: x.Exit(c)})
		assert.Equal(t, c, code, "exit status")
	}

	out, _, _ = e.execOut(t, id, hypervisor.ExecSpec{Args: x.PrintEnv("EXEC_VAR"), Env: map[string]string{"EXEC_VAR": "v 1"}})
	assert.Equal(t, "v 1\n", out, "ExecSpec.Env")
	out, _, _ = e.execOut(t, id, hypervisor.ExecSpec{Args: x.PrintEnv("FROM_SPEC")})
	assert.Equal(t, "spec-value\n", out, "the instance's environment")
	out, _, _ = e.execOut(t, id, hypervisor.ExecSpec{Args: x.Pwd, WorkDir: "/tmp"})
	assert.Equal(t, "/tmp\n", out, "WorkDir")
	out, _, _ = e.execOut(t, id, hypervisor.ExecSpec{Args: x.UserID, User: "1234"})
	assert.Equal(t, "1234\n", out, "User")

	in := "line one\nline two\n" + strings.Repeat("x", 100000) + "\n"
	out, _, code = e.execOut(t, id, hypervisor.ExecSpec{Args: x.Cat, Stdin: strings.NewReader(in)})
	assert.Equal(t, 0, code)
	assert.Equal(t, in, out, "stdin piped through")

	out, _, _ = e.execOut(t, id, hypervisor.ExecSpec{Args: x.TTY})
	assert.Equal(t, "not a tty", tidy(out))
	resize := make(chan hypervisor.TerminalSize, 1)
	resize <- hypervisor.TerminalSize{Rows: 40, Cols: 100}
	out, _, code = e.execOut(t, id, hypervisor.ExecSpec{Args: x.TTY, TTY: true, Size: hypervisor.TerminalSize{Rows: 24, Cols: 80}, Resize: resize})
	assert.Equal(t, "tty", tidy(out))
	assert.Equal(t, 0, code)

	// A missing binary is its own error, and changes nothing.
	_, err := e.d.Exec(ctx, id, hypervisor.ExecSpec{Args: x.Missing})
	requireClass(t, err, hypervisor.ErrCommandNotFound, id, "exec of a missing binary")
	assert.Equal(t, hypervisor.StateRunning, e.info(t, id).State)

	// Ending ctx ends the command.
	cctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := e.d.Exec(cctx, id, hypervisor.ExecSpec{Args: x.Sleep})
		done <- err
	}()
	select {
	case err := <-done:
		assert.ErrorIs(t, err, context.DeadlineExceeded, "a cancelled exec returns ctx's error")
	case <-time.After(e.stateTimeout):
		t.Fatal("a cancelled exec did not return")
	}
	assert.Equal(t, hypervisor.StateRunning, e.info(t, id).State, "cancelling an exec leaves the instance running")
	out, _, _ = e.execOut(t, id, hypervisor.ExecSpec{Args: x.Echo("after")})
	assert.Equal(t, "after\n", out)

	_, err = e.d.Exec(ctx, id, hypervisor.ExecSpec{})
	requireClass(t, err, hypervisor.ErrInvalidArgument, id, "empty command")
	missing := newID("missing")
	_, err = e.d.Exec(ctx, missing, hypervisor.ExecSpec{Args: x.Echo("x")})
	requireClass(t, err, hypervisor.ErrNotFound, missing, "exec in a missing instance")
}

func testExecInvalidState(t *testing.T, e *env) {
	x := e.skipUnlessExec(t)
	id := e.spawn(t, e.spec("execst")).ID
	states := []hypervisor.State{hypervisor.StateShutdown}
	if e.caps.Pause {
		states = append(states, hypervisor.StatePaused)
	}
	if e.caps.SoftDelete {
		states = append(states, hypervisor.StateSoftDeleted)
	}
	for _, st := range states {
		e.establish(t, id, st)
		_, err := e.d.Exec(t.Context(), id, hypervisor.ExecSpec{Args: x.Echo("x")})
		requireStateError(t, err, id, st, "exec in state %s", st)
		assert.Equal(t, st, e.info(t, id).State, "a refused exec leaves the instance alone")
		if e.caps.ConsoleAttach {
			_, err := e.d.AttachConsole(t.Context(), id, hypervisor.ConsoleAttachOptions{})
			requireStateError(t, err, id, st, "console attach in state %s", st)
		}
	}
}

// readUntil reads r until it has seen want, or fails after timeout.
func readUntil(t *testing.T, r io.Reader, want string, timeout time.Duration) string {
	t.Helper()
	got := make(chan string, 1)
	var seen bytes.Buffer
	go func() {
		br := bufio.NewReader(r)
		buf := make([]byte, 4096)
		for {
			n, err := br.Read(buf)
			seen.Write(buf[:n])
			if strings.Contains(seen.String(), want) || err != nil {
				got <- seen.String()
				return
			}
		}
	}()
	select {
	case s := <-got:
		require.Contains(t, s, want)
		return s
	case <-time.After(timeout):
		t.Fatalf("console did not show %q within %s", want, timeout)
		return ""
	}
}

func testConsoleAttach(t *testing.T, e *env) {
	if !e.caps.ConsoleAttach {
		_, err := e.d.AttachConsole(t.Context(), newID("x"), hypervisor.ConsoleAttachOptions{})
		assert.ErrorIs(t, err, hypervisor.ErrNotSupported, "AttachConsole without the capability")
		t.Skip("driver cannot attach consoles")
	}
	if e.h.ConsoleEchoCommand == nil {
		t.Skip("harness has no console echo command")
	}
	spec := e.spec("attach")
	spec.Command = e.h.ConsoleEchoCommand
	id := e.spawn(t, spec).ID
	ctx := t.Context()

	con, err := e.d.AttachConsole(ctx, id, hypervisor.ConsoleAttachOptions{Size: hypervisor.TerminalSize{Rows: 30, Cols: 90}})
	require.NoError(t, err)
	require.NoError(t, con.Resize(ctx, hypervisor.TerminalSize{Rows: 50, Cols: 120}))
	_, err = io.WriteString(con, "ping-1\n")
	require.NoError(t, err)
	readUntil(t, con, "echo: ping-1", e.stateTimeout)
	require.NoError(t, con.Close(), "detach")
	require.NoError(t, con.Close(), "Close is idempotent")
	assert.Equal(t, hypervisor.StateRunning, e.info(t, id).State, "detaching leaves the instance running")

	// Attach again: the instance still answers.
	con, err = e.d.AttachConsole(ctx, id, hypervisor.ConsoleAttachOptions{})
	require.NoError(t, err)
	defer con.Close()
	_, err = io.WriteString(con, "ping-2\n")
	require.NoError(t, err)
	readUntil(t, con, "echo: ping-2", e.stateTimeout)

	// The console's output is the console log too.
	assert.Eventually(t, func() bool {
		b, err := e.d.ConsoleOutput(ctx, id, hypervisor.ConsoleOptions{})
		return err == nil && strings.Contains(string(b), "echo: ping-2")
	}, e.stateTimeout, 20*time.Millisecond, "console log")
}

// testKeys returns n fresh SSH public keys.
func testKeys(t *testing.T, n int) []hypervisor.SSHKey {
	t.Helper()
	var keys []hypervisor.SSHKey
	for i := range n {
		pub, _, err := ed25519.GenerateKey(rand.Reader)
		require.NoError(t, err)
		sk, err := ssh.NewPublicKey(pub)
		require.NoError(t, err)
		keys = append(keys, hypervisor.SSHKey{Name: "key" + itoa(i), Data: strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sk))) + " user" + itoa(i) + "@test"})
	}
	return keys
}

// bootSpec returns a spec with every boot data field set.
func (e *env) bootSpec(t *testing.T, name string) hypervisor.InstanceSpec {
	spec := e.spec(name)
	spec.Metadata = map[string]string{"role": "web", "build": "1"}
	spec.UserData = []byte("#cloud-config\nruncmd:\n  - echo booted\n")
	spec.SSHKeys = testKeys(t, 2)
	spec.AdminPassword = "adm1n-pw"
	spec.Files = []hypervisor.File{{Path: "/etc/motd", Content: []byte("hello from the config drive\n")}}
	return spec
}

type guestMetaData struct {
	UUID       string            `json:"uuid"`
	Hostname   string            `json:"hostname"`
	Meta       map[string]string `json:"meta"`
	AdminPass  string            `json:"admin_pass"`
	PublicKeys map[string]string `json:"public_keys"`
	Files      []struct {
		Path        string `json:"path"`
		ContentPath string `json:"content_path"`
	} `json:"files"`
}

// guestFile reads a file inside the instance.
func (e *env) guestFile(t *testing.T, id, path string) string {
	t.Helper()
	out, errs, code := e.execOut(t, id, hypervisor.ExecSpec{Args: e.h.Exec.CatFile(path)})
	require.Equal(t, 0, code, "cat %s: %s", path, errs)
	return out
}

func (e *env) guestMetaData(t *testing.T, id string) guestMetaData {
	t.Helper()
	var md guestMetaData
	b := e.guestFile(t, id, configdrive.SeedDir+"/openstack/latest/meta_data.json")
	require.NoError(t, json.Unmarshal([]byte(b), &md), "%s", b)
	return md
}

func testConfigDrive(t *testing.T, e *env) {
	if !e.caps.ConfigDrive {
		t.Skip("driver has no config drive")
	}
	e.skipUnlessExec(t)
	spec := e.bootSpec(t, "cdrive")
	spec.AuthorizedKeysUser = ""
	if e.caps.AuthorizedKeys {
		spec.AuthorizedKeysUser = "root"
	}
	id := e.spawn(t, spec).ID

	check := func(when string, meta map[string]string) {
		t.Helper()
		assert.Equal(t, string(spec.UserData), e.guestFile(t, id, configdrive.SeedDir+"/openstack/latest/user_data"), "user_data %s", when)
		md := e.guestMetaData(t, id)
		assert.Equal(t, id, md.UUID, when)
		// The host name, with the DHCP domain the backend is configured
		// with (Nova's dhcp_domain), if any.
		if md.Hostname != spec.Hostname() {
			assert.True(t, strings.HasPrefix(md.Hostname, spec.Hostname()+"."), "host name %q %s", md.Hostname, when)
		}
		assert.Equal(t, meta, md.Meta, "metadata %s", when)
		assert.Equal(t, spec.AdminPassword, md.AdminPass, when)
		assert.Equal(t, map[string]string{"key0": spec.SSHKeys[0].Data, "key1": spec.SSHKeys[1].Data}, md.PublicKeys, when)
		require.Len(t, md.Files, 1, when)
		assert.Equal(t, "/etc/motd", md.Files[0].Path)
		assert.Equal(t, string(spec.Files[0].Content), e.guestFile(t, id, configdrive.SeedDir+"/openstack"+md.Files[0].ContentPath), when)
		assert.Equal(t, string(spec.UserData), e.guestFile(t, id, configdrive.SeedDir+"/ec2/latest/user-data"), when)
		if spec.AuthorizedKeysUser != "" {
			assert.Equal(t, spec.SSHKeys[0].Data+"\n"+spec.SSHKeys[1].Data+"\n", e.guestFile(t, id, "/root/.ssh/authorized_keys"), "authorized_keys %s", when)
		}
	}
	check("after spawn", spec.Metadata)

	// A metadata update shows in the running guest, without a restart.
	before := e.info(t, id)
	newMeta := map[string]string{"role": "db", "owner": "ops"}
	if e.caps.MetadataUpdate {
		require.NoError(t, e.d.UpdateMetadata(t.Context(), id, newMeta))
		after := e.info(t, id)
		assert.Equal(t, before.StartedAt, after.StartedAt, "no restart")
		assert.Equal(t, newMeta, after.Metadata)
		check("after a metadata update", newMeta)
	} else {
		newMeta = spec.Metadata
	}

	// The drive stays for the instance's life.
	if e.caps.Reboot {
		require.NoError(t, e.d.Reboot(t.Context(), id, hypervisor.RebootOptions{Timeout: stopTimeout}))
		check("after a reboot", newMeta)
	}
	require.NoError(t, e.d.PowerOff(t.Context(), id, hypervisor.StopOptions{Timeout: stopTimeout}))
	require.NoError(t, e.d.PowerOn(t.Context(), id))
	check("after power off and on", newMeta)
	if e.caps.SoftDelete {
		require.NoError(t, e.d.SoftDelete(t.Context(), id))
		require.NoError(t, e.d.Restore(t.Context(), id))
		check("after soft delete and restore", newMeta)
	}
}

// testNoConfigDrive: an instance spawned with NoConfigDrive has nothing
// at configdrive.SeedDir, in any state.
func testNoConfigDrive(t *testing.T, e *env) {
	if !e.caps.ConfigDrive {
		t.Skip("driver has no config drive")
	}
	e.skipUnlessExec(t)
	spec := e.bootSpec(t, "nodrive")
	spec.AuthorizedKeysUser = ""
	spec.NoConfigDrive = true
	id := e.spawn(t, spec).ID
	check := func(when string) {
		t.Helper()
		p := configdrive.SeedDir + "/openstack/latest/meta_data.json"
		_, _, code := e.execOut(t, id, hypervisor.ExecSpec{Args: e.h.Exec.CatFile(p)})
		assert.NotEqual(t, 0, code, "%s exists %s", p, when)
	}
	check("after spawn")
	if e.caps.MetadataUpdate {
		require.NoError(t, e.d.UpdateMetadata(t.Context(), id, map[string]string{"role": "db"}))
		check("after a metadata update")
	}
	require.NoError(t, e.d.PowerOff(t.Context(), id, hypervisor.StopOptions{Timeout: stopTimeout}))
	require.NoError(t, e.d.PowerOn(t.Context(), id))
	check("after power off and on")
}

func testBootDataInvalid(t *testing.T, e *env) {
	ctx := t.Context()
	cases := []struct {
		name  string
		mod   func(*hypervisor.InstanceSpec)
		class error
	}{
		{"user-data over 64 KiB", func(s *hypervisor.InstanceSpec) { s.UserData = make([]byte, configdrive.MaxUserDataBytes+1) }, configdrive.ErrUserDataTooLarge},
		{"file escaping the root", func(s *hypervisor.InstanceSpec) {
			s.Files = []hypervisor.File{{Path: "/../../etc/shadow", Content: []byte("x")}}
		}, configdrive.ErrInvalidPath},
		{"relative file", func(s *hypervisor.InstanceSpec) { s.Files = []hypervisor.File{{Path: "etc/x"}} }, configdrive.ErrInvalidPath},
		{"file in /proc", func(s *hypervisor.InstanceSpec) { s.Files = []hypervisor.File{{Path: "/proc/sysrq-trigger"}} }, configdrive.ErrInvalidPath},
		{"file in /sys", func(s *hypervisor.InstanceSpec) { s.Files = []hypervisor.File{{Path: "/sys/kernel/x"}} }, configdrive.ErrInvalidPath},
		{"invalid key", func(s *hypervisor.InstanceSpec) {
			s.SSHKeys = []hypervisor.SSHKey{{Name: "k", Data: "ssh-ed25519 AAAAnotakey"}}
		}, configdrive.ErrInvalidKey},
		{"bad key user", func(s *hypervisor.InstanceSpec) { s.AuthorizedKeysUser = "../root" }, nil},
	}
	for _, c := range cases {
		spec := e.bootSpec(t, "badboot")
		c.mod(&spec)
		_, err := e.d.Spawn(ctx, spec)
		requireClass(t, err, hypervisor.ErrInvalidArgument, spec.ID, c.name)
		if c.class != nil {
			assert.ErrorIs(t, err, c.class, c.name)
		}
		_, err = e.d.Info(ctx, spec.ID)
		assert.ErrorIs(t, err, hypervisor.ErrNotFound, "%s: nothing is left behind", c.name)
	}
	// Exactly 64 KiB is fine.
	spec := e.bootSpec(t, "bigud")
	spec.UserData = bytes.Repeat([]byte("u"), configdrive.MaxUserDataBytes)
	e.spawn(t, spec)
}

func testUpdateMetadata(t *testing.T, e *env) {
	ctx := t.Context()
	if !e.caps.MetadataUpdate {
		err := e.d.UpdateMetadata(ctx, newID("x"), nil)
		assert.ErrorIs(t, err, hypervisor.ErrNotSupported, "UpdateMetadata without the capability")
		t.Skip("driver cannot update metadata")
	}
	spec := e.spec("meta")
	spec.Metadata = map[string]string{"a": "1"}
	id := e.spawn(t, spec).ID
	require.NoError(t, e.d.UpdateMetadata(ctx, id, map[string]string{"b": "2"}))
	assert.Equal(t, map[string]string{"b": "2"}, e.info(t, id).Metadata)
	list, err := e.d.List(ctx, hypervisor.ListOptions{Labels: map[string]string{labelRun: e.run}})
	require.NoError(t, err)
	require.Len(t, list, 1)
	assert.Equal(t, map[string]string{"b": "2"}, list[0].Metadata, "List reports the new metadata")

	// Valid in a stopped instance too.
	require.NoError(t, e.d.PowerOff(ctx, id, hypervisor.StopOptions{Timeout: stopTimeout}))
	require.NoError(t, e.d.UpdateMetadata(ctx, id, nil))
	assert.Empty(t, e.info(t, id).Metadata)

	err = e.d.UpdateMetadata(ctx, id, map[string]string{"": "x"})
	requireClass(t, err, hypervisor.ErrInvalidArgument, id, "empty metadata key")
	missing := newID("missing")
	err = e.d.UpdateMetadata(ctx, missing, map[string]string{"a": "b"})
	requireClass(t, err, hypervisor.ErrNotFound, missing, "missing instance")
}
