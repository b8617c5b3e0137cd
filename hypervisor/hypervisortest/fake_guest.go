package hypervisortest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/dockervisor/dockervisor/configdrive"
	"github.com/dockervisor/dockervisor/hypervisor"
	"github.com/dockervisor/dockervisor/hypervisor/internal/bootdata"
)

// FakeConsoleEchoCommand is a command for a Fake instance that answers
// every line typed into its console (see [Fake.AttachConsole]) with
// "echo: <line>\n" on the console.
var FakeConsoleEchoCommand = []string{"fake-console-echo"}

// fakeGuest is what a Fake instance has inside: its boot data and config
// drive, and the console input not yet answered.
type fakeGuest struct {
	spec     hypervisor.InstanceSpec
	boot     configdrive.Instance
	drive    configdrive.Tree
	keysFile string // path of the injected authorized_keys, if any
	keys     []byte
	input    []byte // console input since the last newline
}

func (g *fakeGuest) init(spec hypervisor.InstanceSpec) error {
	g.spec = spec
	g.boot = bootdata.ConfigDrive(spec, maps.Clone(spec.Metadata), nil)
	t, err := configdrive.Build(g.boot)
	if err != nil {
		return fmt.Errorf("%w: %w", hypervisor.ErrInvalidArgument, err)
	}
	if !spec.NoConfigDrive {
		g.drive = t
	}
	if u := spec.AuthorizedKeysUser; u != "" {
		g.keysFile = path.Join("/home", u, ".ssh/authorized_keys")
		if u == "root" {
			g.keysFile = "/root/.ssh/authorized_keys"
		}
		g.keys = configdrive.Instance{Keys: bootdata.Keys(spec.SSHKeys)}.AuthorizedKeys()
	}
	return nil
}

// file returns a file of the guest for the cat program.
func (g *fakeGuest) file(p string) ([]byte, bool) {
	if g.keysFile != "" && p == g.keysFile {
		return g.keys, true
	}
	rel, ok := strings.CutPrefix(path.Clean(p), configdrive.SeedDir+"/")
	if !ok {
		return nil, false
	}
	b, ok := g.drive[rel]
	return b, ok
}

// ConfigDrive returns the config drive tree of an instance; an instance
// spawned with NoConfigDrive has none (an empty tree).
func (f *Fake) ConfigDrive(id string) (configdrive.Tree, error) {
	var t configdrive.Tree
	err := f.with(context.Background(), "config-drive", id, func(fi *fakeInstance) error {
		t = maps.Clone(fi.guest.drive)
		return nil
	})
	return t, err
}

var _ hypervisor.MetadataUpdater = (*Fake)(nil)

// UpdateMetadata replaces the instance's metadata and rebuilds its config
// drive. Valid in every state.
func (f *Fake) UpdateMetadata(ctx context.Context, id string, md map[string]string) error {
	const op = "update-metadata"
	for k := range md {
		if k == "" {
			return hypervisor.WrapOp(op, id, fmt.Errorf("%w: empty metadata key", hypervisor.ErrInvalidArgument))
		}
	}
	return f.with(ctx, op, id, func(fi *fakeInstance) error {
		boot := fi.guest.boot
		boot.Meta = maps.Clone(md)
		t, err := configdrive.Build(boot)
		if err != nil {
			return fmt.Errorf("%w: %w", hypervisor.ErrInvalidArgument, err)
		}
		fi.guest.boot = boot
		if !fi.guest.spec.NoConfigDrive {
			fi.guest.drive = t
		}
		fi.inst.Metadata = maps.Clone(md)
		return nil
	})
}

var _ hypervisor.GuestAccess = (*Fake)(nil)

// Exec runs one of the Fake's programs in a running instance. A Fake runs
// no processes: Exec knows these commands (Args[0]) and returns
// ErrCommandNotFound for any other:
//
//	echo ARGS...     writes ARGS joined by spaces and "\n" to stdout
//	stderr ARGS...   the same, to stderr
//	cat              copies stdin to stdout
//	cat PATH         writes a file of the instance: its config drive under
//	                 configdrive.SeedDir, and ~/.ssh/authorized_keys of
//	                 InstanceSpec.AuthorizedKeysUser (root's home is /root,
//	                 others' /home/NAME)
//	printenv NAME    writes the variable's value (ExecSpec.Env, then the
//	                 spec's Env) and "\n"
//	pwd              writes ExecSpec.WorkDir, or "/", and "\n"
//	id -u            writes the numeric user of ExecSpec.User, or 0
//	exit N           exits with status N
//	sleep            runs until ctx ends or the instance stops
//	tty              writes "tty" with ExecSpec.TTY, else "not a tty"
//
// With TTY, stderr goes to stdout and "\n" is written as "\r\n", as a
// terminal does.
func (f *Fake) Exec(ctx context.Context, id string, spec hypervisor.ExecSpec) (hypervisor.ExecResult, error) {
	res, err := f.exec(ctx, id, spec)
	return res, hypervisor.WrapOp("exec", id, err)
}

func (f *Fake) exec(ctx context.Context, id string, spec hypervisor.ExecSpec) (hypervisor.ExecResult, error) {
	if len(spec.Args) == 0 || spec.Args[0] == "" {
		return hypervisor.ExecResult{}, fmt.Errorf("%w: empty command", hypervisor.ErrInvalidArgument)
	}
	if !spec.TTY && (spec.Size != hypervisor.TerminalSize{}) {
		return hypervisor.ExecResult{}, fmt.Errorf("%w: a terminal size needs TTY", hypervisor.ErrInvalidArgument)
	}
	var g fakeGuest
	var pid int
	err := f.with(ctx, "exec", id, func(fi *fakeInstance) error {
		if _, err := hypervisor.OpExec.Check(id, fi.inst.State); err != nil {
			return err
		}
		g, pid = fi.guest, fi.inst.PID
		return nil
	})
	if err != nil {
		var oe *hypervisor.OpError
		if errors.As(err, &oe) {
			return hypervisor.ExecResult{}, oe.Err
		}
		return hypervisor.ExecResult{}, err
	}
	stdout, stderr := orDiscard(spec.Stdout), orDiscard(spec.Stderr)
	if spec.TTY {
		stdout = &ttyWriter{w: stdout}
		stderr = stdout
	}
	line := func(w io.Writer, s string) { _, _ = io.WriteString(w, s+"\n") }
	args := spec.Args[1:]
	switch spec.Args[0] {
	case "echo":
		line(stdout, strings.Join(args, " "))
	case "stderr":
		line(stderr, strings.Join(args, " "))
	case "cat":
		if len(args) == 0 {
			if spec.Stdin != nil {
				if _, err := io.Copy(stdout, spec.Stdin); err != nil {
					return hypervisor.ExecResult{}, err
				}
			}
			break
		}
		b, ok := g.file(args[0])
		if !ok {
			line(stderr, "cat: can't open '"+args[0]+"': No such file or directory")
			return hypervisor.ExecResult{ExitCode: 1}, nil
		}
		_, _ = stdout.Write(b)
	case "printenv":
		if len(args) != 1 {
			return hypervisor.ExecResult{ExitCode: 2}, nil
		}
		v, ok := spec.Env[args[0]]
		if !ok {
			v, ok = g.spec.Env[args[0]]
		}
		if !ok {
			return hypervisor.ExecResult{ExitCode: 1}, nil
		}
		line(stdout, v)
	case "pwd":
		wd := spec.WorkDir
		if wd == "" {
			wd = "/"
		}
		line(stdout, wd)
	case "id":
		u, _, _ := strings.Cut(spec.User, ":")
		if _, err := strconv.Atoi(u); err != nil {
			u = "0"
		}
		line(stdout, u)
	case "exit":
		n := 0
		if len(args) > 0 {
			n, _ = strconv.Atoi(args[0])
		}
		return hypervisor.ExecResult{ExitCode: n}, nil
	case "tty":
		if spec.TTY {
			line(stdout, "tty")
		} else {
			line(stdout, "not a tty")
		}
	case "sleep":
		return f.sleep(ctx, id, pid)
	default:
		return hypervisor.ExecResult{ExitCode: 127}, fmt.Errorf("%w: %q", hypervisor.ErrCommandNotFound, spec.Args[0])
	}
	return hypervisor.ExecResult{}, nil
}

// sleep waits until ctx ends (the command is killed) or the instance's
// process pid ends (exit status 137, as for a SIGKILL).
func (f *Fake) sleep(ctx context.Context, id string, pid int) (hypervisor.ExecResult, error) {
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return hypervisor.ExecResult{}, ctx.Err()
		case <-f.closing:
			return hypervisor.ExecResult{}, errUnavailable()
		case <-tick.C:
		}
		f.mu.Lock()
		fi := f.instances[id]
		alive := fi != nil && fi.inst.PID == pid && slices.Contains(stHasProcess, fi.inst.State)
		f.mu.Unlock()
		if !alive {
			return hypervisor.ExecResult{ExitCode: 137}, nil
		}
	}
}

func orDiscard(w io.Writer) io.Writer {
	if w == nil {
		return io.Discard
	}
	return w
}

// ttyWriter writes "\n" as "\r\n", as a terminal's output does.
type ttyWriter struct{ w io.Writer }

func (t *ttyWriter) Write(p []byte) (int, error) {
	if _, err := t.w.Write(bytes.ReplaceAll(p, []byte("\n"), []byte("\r\n"))); err != nil {
		return 0, err
	}
	return len(p), nil
}

// AttachConsole attaches to a running instance's console: reads return
// console output written after the attach ([Fake.WriteConsole], and the
// answers of a [FakeConsoleEchoCommand] instance to what is written to the
// Console); io.EOF once the instance's process ends.
func (f *Fake) AttachConsole(ctx context.Context, id string, opts hypervisor.ConsoleAttachOptions) (hypervisor.Console, error) {
	var c *fakeConsole
	err := f.with(ctx, "attach-console", id, func(fi *fakeInstance) error {
		if _, err := hypervisor.OpAttachConsole.Check(id, fi.inst.State); err != nil {
			return err
		}
		c = &fakeConsole{f: f, id: id, pid: fi.inst.PID, next: len(fi.console), closed: make(chan struct{})}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return c, nil
}

type fakeConsole struct {
	f         *Fake
	id        string
	pid       int
	next      int    // index of the next console chunk to read
	rest      []byte // unread part of the last chunk
	closeOnce sync.Once
	closed    chan struct{}
}

func (c *fakeConsole) Read(p []byte) (int, error) {
	for {
		if len(c.rest) > 0 {
			n := copy(p, c.rest)
			c.rest = c.rest[n:]
			return n, nil
		}
		select {
		case <-c.closed:
			return 0, io.EOF
		default:
		}
		c.f.mu.Lock()
		fi := c.f.instances[c.id]
		if fi == nil || fi.inst.PID != c.pid || !slices.Contains(stHasProcess, fi.inst.State) {
			c.f.mu.Unlock()
			return 0, io.EOF
		}
		for c.next < len(fi.console) && len(c.rest) == 0 {
			c.rest = bytes.Clone(fi.console[c.next].data)
			c.next++
		}
		c.f.mu.Unlock()
		if len(c.rest) == 0 {
			select {
			case <-c.closed:
				return 0, io.EOF
			case <-time.After(5 * time.Millisecond):
			}
		}
	}
}

func (c *fakeConsole) Write(p []byte) (int, error) {
	select {
	case <-c.closed:
		return 0, io.ErrClosedPipe
	default:
	}
	c.f.mu.Lock()
	defer c.f.mu.Unlock()
	fi := c.f.instances[c.id]
	if fi == nil || fi.inst.PID != c.pid {
		return 0, io.ErrClosedPipe
	}
	if !slices.Equal(fi.guest.spec.Command, FakeConsoleEchoCommand) {
		return len(p), nil // nobody reads the input
	}
	fi.guest.input = append(fi.guest.input, p...)
	for {
		i := bytes.IndexByte(fi.guest.input, '\n')
		if i < 0 {
			break
		}
		l := strings.TrimRight(string(fi.guest.input[:i]), "\r")
		fi.guest.input = fi.guest.input[i+1:]
		fi.console = append(fi.console, consoleChunk{t: c.f.now(), data: []byte("echo: " + l + "\n")})
	}
	return len(p), nil
}

func (c *fakeConsole) Close() error {
	c.closeOnce.Do(func() { close(c.closed) })
	return nil
}

func (c *fakeConsole) Resize(ctx context.Context, size hypervisor.TerminalSize) error {
	if size.Rows == 0 || size.Cols == 0 {
		return fmt.Errorf("%w: terminal size %dx%d", hypervisor.ErrInvalidArgument, size.Cols, size.Rows)
	}
	return ctx.Err()
}
