package ovsrun

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/dockervisor/dockervisor/pidproc"
)

// Schema is the Open vSwitch database schema a switch's database is
// created from.
const Schema = "/usr/share/openvswitch/vswitch.ovsschema"

// Datapath types of a switch's bridges.
const (
	// DatapathNetdev is the userspace datapath: no kernel module is
	// needed. The default.
	DatapathNetdev = "netdev"
	// DatapathSystem is the kernel's Open vSwitch datapath.
	DatapathSystem = "system"
)

// Options configure Start. The zero value is a switch in a temporary run
// directory, in the caller's network namespace, on the userspace
// datapath, whose daemons die with the calling process.
type Options struct {
	// Dir is the run directory: database, sockets, pid files, logs. Empty
	// means a new temporary directory. Unix socket paths are limited to
	// 107 bytes, so keep it short. Stop removes it.
	Dir string
	// NetNS names the network namespace (under /run/netns) ovs-vswitchd
	// runs in. Start creates it when it does not exist, and Stop then
	// deletes it. Empty means the caller's namespace.
	NetNS string
	// Datapath is the datapath type of the bridges AddBridge creates:
	// DatapathNetdev (empty means it) or DatapathSystem.
	Datapath string
	// Detach starts the daemons detached, so that they outlive the
	// calling process; find the switch again with Open. Otherwise they
	// are children of the calling process and die with it.
	Detach bool
}

// Switch is a private Open vSwitch. Its methods are safe for concurrent
// use.
type Switch struct {
	Dir       string // run directory
	DB        string // "unix:<Dir>/db.sock", for ovs-vsctl --db and ovs.WithDB
	NetNSName string // the namespace ovs-vswitchd runs in, under /run/netns; empty for the caller's
	NetNS     string // its path, for ovs.WithHostNetNS; empty for the caller's
	Datapath  string // the datapath type of its bridges

	meta     meta
	db, vsd  *daemon // children; nil for a detached switch
	stopOnce sync.Once
	stopErr  error
}

// meta is what a detached switch's run directory records, so that another
// process can stop it.
type meta struct {
	NetNS        string `json:"netns,omitempty"`
	CreatedNetNS bool   `json:"created_netns,omitempty"`
	Datapath     string `json:"datapath"`
}

const metaFile = "switch.json"

// Start starts a private Open vSwitch. On error it stops what it started.
func Start(ctx context.Context, opts Options) (*Switch, error) {
	switch opts.Datapath {
	case "":
		opts.Datapath = DatapathNetdev
	case DatapathNetdev, DatapathSystem:
	default:
		return nil, fmt.Errorf("ovsrun: datapath %q (want %q or %q)", opts.Datapath, DatapathNetdev, DatapathSystem)
	}
	for _, bin := range []string{"ovsdb-tool", "ovsdb-server", "ovs-vswitchd", "ovs-vsctl", "ovs-appctl", "ip"} {
		if _, err := exec.LookPath(bin); err != nil {
			return nil, fmt.Errorf("ovsrun: Open vSwitch is not installed (openvswitch-switch): %w", err)
		}
	}
	if _, err := os.Stat(Schema); err != nil {
		return nil, fmt.Errorf("ovsrun: schema: %w", err)
	}
	dir := opts.Dir
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", "ovsrun-"); err != nil {
			return nil, err
		}
	} else if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	s := newSwitch(dir, meta{NetNS: opts.NetNS, Datapath: opts.Datapath})
	if err := s.launch(ctx, opts.Detach); err != nil {
		return nil, errors.Join(err, s.Stop(context.WithoutCancel(ctx)))
	}
	return s, nil
}

// Open returns the detached switch whose run directory is dir, running or
// not (see Running); Stop stops and removes it. A directory that holds no
// switch is an error wrapping fs.ErrNotExist.
func Open(dir string) (*Switch, error) {
	b, err := os.ReadFile(filepath.Join(dir, metaFile))
	if err != nil {
		return nil, fmt.Errorf("ovsrun: %w", err)
	}
	var m meta
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("ovsrun: %s: %w", filepath.Join(dir, metaFile), err)
	}
	return newSwitch(dir, m), nil
}

func newSwitch(dir string, m meta) *Switch {
	s := &Switch{Dir: dir, DB: "unix:" + filepath.Join(dir, "db.sock"), NetNSName: m.NetNS, Datapath: m.Datapath, meta: m}
	if m.NetNS != "" {
		s.NetNS = filepath.Join("/run/netns", m.NetNS)
	}
	return s
}

func (s *Switch) path(name string) string { return filepath.Join(s.Dir, name) }

func (s *Switch) launch(ctx context.Context, detach bool) error {
	if s.NetNSName != "" {
		if _, err := os.Stat(s.NetNS); errors.Is(err, os.ErrNotExist) {
			if err := run(ctx, "ip", "netns", "add", s.NetNSName); err != nil {
				return err
			}
			s.meta.CreatedNetNS = true
			if err := run(ctx, "ip", "-n", s.NetNSName, "link", "set", "lo", "up"); err != nil {
				return err
			}
		}
	}
	b, err := json.Marshal(s.meta)
	if err != nil {
		return err
	}
	if err := os.WriteFile(s.path(metaFile), b, 0o600); err != nil {
		return err
	}
	if err := run(ctx, "ovsdb-tool", "create", s.path("conf.db"), Schema); err != nil {
		return err
	}
	dbArgs := []string{s.path("conf.db"), "--remote=punix:" + s.path("db.sock"),
		"--pidfile=" + s.path("ovsdb-server.pid"), "--unixctl=" + s.path("ovsdb-server.ctl"),
		"--log-file=" + s.path("ovsdb-server.log"), "--no-chdir"}
	var vsd []string
	if s.NetNSName != "" {
		// ip netns exec execs ovs-vswitchd in place, in the namespace, so
		// a child's parent-death signal stays armed.
		vsd = []string{"ip", "netns", "exec", s.NetNSName}
	}
	vsd = append(vsd, "ovs-vswitchd", s.DB,
		"--pidfile="+s.path("ovs-vswitchd.pid"), "--unixctl="+s.path("ovs-vswitchd.ctl"),
		"--log-file="+s.path("ovs-vswitchd.log"), "--no-chdir")
	if detach {
		// --detach returns once the daemon is ready.
		if err := s.runIn(ctx, "ovsdb-server", append(dbArgs, "--detach")...); err != nil {
			return err
		}
		if _, err := s.Vsctl(ctx, "--no-wait", "init"); err != nil {
			return err
		}
		return s.runIn(ctx, vsd[0], append(vsd[1:], "--detach")...)
	}
	if s.db, err = s.spawn("ovsdb-server", dbArgs...); err != nil {
		return err
	}
	// The database answers once its socket is bound.
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		_, err := s.Vsctl(ctx, "--no-wait", "init")
		if err == nil {
			break
		}
		if !s.db.running() {
			return fmt.Errorf("ovsrun: ovsdb-server did not come up: %w: %s", err, s.db.out.tail())
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("ovsrun: ovsdb-server did not come up: %w (%w)", ctx.Err(), err)
		case <-tick.C:
		}
	}
	if s.vsd, err = s.spawn(vsd[0], vsd[1:]...); err != nil {
		return err
	}
	s.vsd.name = "ovs-vswitchd"
	// Without --no-wait, ovs-vsctl waits for ovs-vswitchd to apply a
	// change: this waits for ovs-vswitchd to be up.
	if _, err := s.Vsctl(ctx, "init"); err != nil {
		return fmt.Errorf("ovsrun: ovs-vswitchd did not come up: %w: %s", err, s.vsd.out.tail())
	}
	// Its control socket may come a moment later; Running needs it.
	for !s.Running(ctx) {
		if !s.vsd.running() {
			return fmt.Errorf("ovsrun: ovs-vswitchd exited: %s", s.vsd.out.tail())
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("ovsrun: ovs-vswitchd's control socket: %w", ctx.Err())
		case <-tick.C:
		}
	}
	return s.Alive()
}

// AddBridge creates the bridge name, unless it exists, on the switch's
// datapath, and checks that ovs-vswitchd opened it.
func (s *Switch) AddBridge(ctx context.Context, name string) error {
	// datapath_type in the add-br transaction: a plain add-br leaves a dead
	// bridge where the default (kernel) datapath is missing.
	if _, err := s.Vsctl(ctx, "--", "--may-exist", "add-br", name, "--", "set", "Bridge", name, "datapath_type="+s.Datapath); err != nil {
		return fmt.Errorf("ovsrun: create bridge %s: %w", name, err)
	}
	// The bridge's local port is OpenFlow port 65534 once it works.
	if ofport, err := s.Vsctl(ctx, "get", "Interface", name, "ofport"); err != nil || ofport != "65534" {
		return fmt.Errorf("ovsrun: bridge %s does not work (ofport %q, %v); logs in %s", name, ofport, err, s.Dir)
	}
	return nil
}

// Vsctl runs ovs-vsctl against the switch's database with a 10 s timeout
// and returns its trimmed standard output.
func (s *Switch) Vsctl(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "ovs-vsctl", append([]string{"--timeout=10", "--db=" + s.DB}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("ovs-vsctl %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(errb.String()))
	}
	return strings.TrimSpace(out.String()), nil
}

// Running reports whether both daemons of the switch answer.
func (s *Switch) Running(ctx context.Context) bool {
	for _, d := range []string{"ovsdb-server", "ovs-vswitchd"} {
		if err := run(ctx, "ovs-appctl", "--timeout=2", "-t", s.path(d+".ctl"), "version"); err != nil {
			return false
		}
	}
	return true
}

// Alive returns an error naming a daemon of a switch Start started without
// Detach that has exited, with the end of its output. A detached switch
// is alive when it is Running.
func (s *Switch) Alive() error {
	for _, d := range []*daemon{s.db, s.vsd} {
		if d != nil && !d.running() {
			return fmt.Errorf("ovsrun: %s (pid %d) has exited (%s); logs in %s: %s", d.name, d.cmd.Process.Pid, d.cmd.ProcessState, s.Dir, d.out.tail())
		}
	}
	return nil
}

// PIDs returns the process IDs of ovsdb-server and ovs-vswitchd: of the
// children of a switch Start started without Detach, or from the pid files
// of a detached one (0 when there is none).
func (s *Switch) PIDs() (db, vswitchd int) {
	if s.db != nil && s.vsd != nil {
		return s.db.cmd.Process.Pid, s.vsd.cmd.Process.Pid
	}
	for _, d := range []string{"ovsdb-server", "ovs-vswitchd"} {
		if p, err := s.openDaemon(d); err == nil {
			if d == "ovsdb-server" {
				db = p.PID
			} else {
				vswitchd = p.PID
			}
			_ = p.Close()
		}
	}
	return db, vswitchd
}

// openDaemon holds detached daemon d (ovsdb-server or ovs-vswitchd) of the
// switch by its pid file: a process whose command line names that pid
// file, so a reused PID is never taken for it.
func (s *Switch) openDaemon(d string) (*pidproc.Process, error) {
	pidFile := s.path(d + ".pid")
	return pidproc.Open(pidFile, "--pidfile="+pidFile)
}

// KillDB kills ovsdb-server with SIGKILL, as a crash would, and waits for
// it to exit; ovs-vswitchd keeps running. It is for tests of what a client
// does when the database dies, and needs a switch Start started without
// Detach.
func (s *Switch) KillDB() { s.db.kill() }

// Stop deletes the switch's bridges, stops both daemons (killing one that
// does not exit within 5 s), deletes the namespace if Start created it and
// removes the run directory. A switch that is not running is removed all
// the same. It is idempotent.
func (s *Switch) Stop(ctx context.Context) error {
	s.stopOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 20*time.Second)
		defer cancel()
		if _, err := os.Stat(s.Dir); errors.Is(err, os.ErrNotExist) {
			return
		}
		if out, err := s.Vsctl(ctx, "--timeout=2", "list-br"); err == nil {
			for _, br := range strings.Fields(out) {
				_, _ = s.Vsctl(ctx, "--if-exists", "del-br", br)
			}
		}
		// A detached daemon is held by its pidfd first: it removes its pid
		// file as it exits.
		var procs []*pidproc.Process
		if s.db == nil && s.vsd == nil {
			for _, d := range []string{"ovs-vswitchd", "ovsdb-server"} {
				if p, err := s.openDaemon(d); err == nil {
					procs = append(procs, p)
				}
			}
		}
		_ = run(ctx, "ovs-appctl", "--timeout=5", "-t", s.path("ovs-vswitchd.ctl"), "exit", "--cleanup")
		_ = run(ctx, "ovs-appctl", "--timeout=5", "-t", s.path("ovsdb-server.ctl"), "exit")
		var errs []error
		s.vsd.wait(5 * time.Second)
		s.db.wait(5 * time.Second)
		for _, p := range procs {
			// Exiting already; SIGKILL if it has not within 5 s.
			wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			if err := p.Terminate(wctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
				errs = append(errs, err)
			}
			cancel()
		}
		if err := errors.Join(errs...); err != nil {
			s.stopErr = err
			return
		}
		if s.meta.CreatedNetNS {
			if _, err := os.Stat(s.NetNS); err == nil {
				errs = append(errs, run(ctx, "ip", "netns", "delete", s.NetNSName))
			}
		}
		errs = append(errs, os.RemoveAll(s.Dir))
		s.stopErr = errors.Join(errs...)
	})
	return s.stopErr
}

// daemon is a daemon started as a child process.
type daemon struct {
	name   string
	cmd    *exec.Cmd
	out    *tailBuffer
	exited chan struct{}
}

// spawn starts a daemon as a child in its own process group that dies
// with this process, with Open vSwitch's run, log and database
// directories pointed at the run directory.
func (s *Switch) spawn(name string, args ...string) (*daemon, error) {
	cmd := exec.Command(name, args...)
	cmd.Dir = s.Dir
	cmd.Env = s.env()
	d := &daemon{name: name, cmd: cmd, out: &tailBuffer{}, exited: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = d.out, d.out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("ovsrun: start %s: %w", name, err)
	}
	go func() {
		_ = cmd.Wait()
		close(d.exited)
	}()
	return d, nil
}

func (s *Switch) env() []string {
	return append(os.Environ(), "OVS_RUNDIR="+s.Dir, "OVS_LOGDIR="+s.Dir, "OVS_DBDIR="+s.Dir)
}

// runIn runs a command in the run directory with its environment.
func (s *Switch) runIn(ctx context.Context, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir, cmd.Env = s.Dir, s.env()
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("ovsrun: %s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

func (d *daemon) running() bool {
	if d == nil {
		return false
	}
	select {
	case <-d.exited:
		return false
	default:
		return true
	}
}

// wait waits up to timeout for d to exit, then kills it and waits.
func (d *daemon) wait(timeout time.Duration) {
	if d == nil {
		return
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-d.exited:
	case <-t.C:
		d.kill()
	}
}

func (d *daemon) kill() {
	if d == nil {
		return
	}
	_ = d.cmd.Process.Kill()
	<-d.exited
}

func run(ctx context.Context, name string, args ...string) error {
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// tailBuffer keeps the last 4 KiB written to it.
type tailBuffer struct {
	mu sync.Mutex
	b  []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > 4096 {
		t.b = t.b[len(t.b)-4096:]
	}
	return len(p), nil
}

func (t *tailBuffer) tail() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.TrimSpace(string(t.b))
}
