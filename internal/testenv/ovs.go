package testenv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/dockervisor/dockervisor/internal/ovsrun"
)

// OVSSchema is the Open vSwitch database schema a private ovsdb-server is
// created from.
const OVSSchema = "/usr/share/openvswitch/vswitch.ovsschema"

// OVSBridge is the name of the integration bridge of a private Open
// vSwitch. It lives in the private network namespace, so it does not clash
// with other test processes.
const OVSBridge = "br-int"

// OVS is a private Open vSwitch: an ovsdb-server and an ovs-vswitchd with
// their own run directory, and an integration bridge [OVSBridge]. The
// bridge uses the kernel datapath (datapath_type=system) where the kernel
// has the Open vSwitch module (loaded by the harness if needed, as the
// distribution's service does), else the userspace datapath
// (datapath_type=netdev), as on this project's CI kernel. Where
// [KernelFeaturesEnv] requires [FeatureOVSKernelDatapath] (the kernel
// lane), a switch without the kernel datapath fails to start.
//
// ovs-vswitchd runs inside its own network namespace, NetNS. Both
// datapaths open port devices by name in ovs-vswitchd's own namespace (the
// kernel keeps a datapath per namespace), so the host side of the VIFs
// that tests plug on this switch (qvo, tap) must live in NetNS too: tests
// pass NetNS as the VIF drivers' host namespace.
type OVS struct {
	Dir       string // run directory: conf.db, db.sock, control sockets, logs
	DB        string // "unix:<Dir>/db.sock", for ovs-vsctl --db
	NetNS     string // path of the network namespace ovs-vswitchd runs in
	NetNSName string // its name under /run/netns
	Bridge    string // the integration bridge, [OVSBridge]
	Datapath  string // its datapath type, ovsrun.DatapathSystem or ovsrun.DatapathNetdev

	db, vswitchd *daemon
	stopOnce     sync.Once
}

// daemon is one child process of the harness.
type daemon struct {
	name   string
	cmd    *exec.Cmd
	out    bytes.Buffer
	exited chan struct{}
}

var (
	ovsMu      sync.Mutex
	ovsStopped bool
	ovsStart   = sync.OnceValues(startSharedOVS)
	ovsStop    sync.Once
	ovsSeq     atomic.Int64
)

// MustHaveOVS returns the private Open vSwitch of this test process,
// starting it on the first call; every test of the process shares it, so
// tests use unique port and device names and remove what they plug. It
// skips (or fails in CI) when the Open vSwitch binaries are missing or the
// daemons do not come up, and fails the test when a daemon has died since.
//
// The daemons are started with a parent-death signal, so they die with the
// test binary. Call [StopOVS] from TestMain after m.Run to stop them
// cleanly and remove their namespace and files.
func MustHaveOVS(t testing.TB) *OVS {
	t.Helper()
	MustHaveRoot(t)
	o, err := ovsStart()
	if err != nil {
		Missing(t, "Open vSwitch: %v", err)
	}
	if err := o.alive(); err != nil {
		t.Fatalf("private Open vSwitch: %v", err)
	}
	return o
}

// StopOVS stops the private Open vSwitch of [MustHaveOVS] if one was
// started: it deletes the integration bridge, stops ovs-vswitchd with
// "exit --cleanup" and ovsdb-server, deletes the namespace and removes the
// run directory. It is idempotent and safe to call when none was started;
// call it from TestMain after m.Run.
func StopOVS() {
	ovsStop.Do(func() {
		ovsMu.Lock()
		ovsStopped = true
		ovsMu.Unlock()
		o, err := ovsStart() // returns at once if started; otherwise refuses to start
		if err != nil || o == nil {
			return
		}
		o.Stop()
	})
}

var errOVSStopped = errors.New("StopOVS was called")

func startSharedOVS() (*OVS, error) {
	ovsMu.Lock()
	stopped := ovsStopped
	ovsMu.Unlock()
	if stopped {
		return nil, errOVSStopped
	}
	return newOVS()
}

// StartOVS starts an extra private Open vSwitch owned by t, like the one of
// [MustHaveOVS] but with its own directory, database and namespace, for
// tests that break it (see [OVS.KillDB]). It is stopped and removed at t's
// cleanup. It skips (or fails in CI) when Open vSwitch is missing.
func StartOVS(t testing.TB) *OVS {
	t.Helper()
	MustHaveRoot(t)
	o, err := newOVS()
	if err != nil {
		Missing(t, "Open vSwitch: %v", err)
	}
	t.Cleanup(o.Stop)
	return o
}

// Vsctl runs ovs-vsctl against o's database with a 10 s timeout and returns
// its trimmed standard output.
func (o *OVS) Vsctl(ctx context.Context, args ...string) (string, error) {
	full := append([]string{"--timeout=10", "--db=" + o.DB}, args...)
	cmd := exec.CommandContext(ctx, "ovs-vsctl", full...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("ovs-vsctl %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return strings.TrimSpace(stdout.String()), nil
}

// MustVsctl is [OVS.Vsctl] that fails t on error.
func (o *OVS) MustVsctl(t testing.TB, args ...string) string {
	t.Helper()
	out, err := o.Vsctl(context.WithoutCancel(t.Context()), args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// KillDB kills ovsdb-server with SIGKILL, as a crash would, and waits for
// it to exit. ovs-vswitchd keeps running; every later ovs-vsctl command
// fails to connect.
func (o *OVS) KillDB() {
	o.db.kill()
}

// Stop deletes the integration bridge, stops both daemons (killing them
// when they do not exit within 5 s), deletes the namespace and removes the
// run directory. It is idempotent.
func (o *OVS) Stop() {
	o.stopOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if o.db.running() {
			_, _ = o.Vsctl(ctx, "--if-exists", "del-br", o.Bridge)
		}
		if o.vswitchd != nil {
			_ = exec.CommandContext(ctx, "ovs-appctl", "-t", filepath.Join(o.Dir, "ovs-vswitchd.ctl"), "exit", "--cleanup").Run()
			o.vswitchd.wait(5 * time.Second)
		}
		_ = exec.CommandContext(ctx, "ovs-appctl", "-t", filepath.Join(o.Dir, "ovsdb-server.ctl"), "exit").Run()
		o.db.wait(5 * time.Second)
		_ = exec.CommandContext(ctx, "ip", "netns", "delete", o.NetNSName).Run()
		_ = os.RemoveAll(o.Dir)
	})
}

// alive reports an error when a daemon of o has exited.
func (o *OVS) alive() error {
	for _, d := range []*daemon{o.db, o.vswitchd} {
		if !d.running() {
			return fmt.Errorf("%s (pid %d) has exited (%s); log in %s: %s", d.name, d.cmd.Process.Pid, d.cmd.ProcessState, o.Dir, tail(d.out.Bytes(), 1000))
		}
	}
	return nil
}

// newOVS creates the namespace and run directory, starts both daemons and
// creates the integration bridge.
func newOVS() (*OVS, error) {
	for _, bin := range []string{"ovsdb-tool", "ovsdb-server", "ovs-vswitchd", "ovs-vsctl", "ovs-appctl", "ip"} {
		if _, err := exec.LookPath(bin); err != nil {
			return nil, fmt.Errorf("not installed: %w", err)
		}
	}
	if _, err := os.Stat(OVSSchema); err != nil {
		return nil, fmt.Errorf("schema: %w", err)
	}
	dir, err := os.MkdirTemp("", "dvovs-")
	if err != nil {
		return nil, err
	}
	name := fmt.Sprintf("dvovs-%d-%d", os.Getpid(), ovsSeq.Add(1))
	o := &OVS{
		Dir:       dir,
		DB:        "unix:" + filepath.Join(dir, "db.sock"),
		NetNS:     filepath.Join("/run/netns", name),
		NetNSName: name,
		Bridge:    OVSBridge,
	}
	if err := o.launch(); err != nil {
		o.Stop()
		return nil, err
	}
	return o, nil
}

func (o *OVS) launch() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "ip", "netns", "add", o.NetNSName).CombinedOutput(); err != nil {
		return fmt.Errorf("ip netns add %s: %w: %s", o.NetNSName, err, out)
	}
	if out, err := exec.CommandContext(ctx, "ip", "-n", o.NetNSName, "link", "set", "lo", "up").CombinedOutput(); err != nil {
		return fmt.Errorf("lo up in %s: %w: %s", o.NetNSName, err, out)
	}
	dbFile := filepath.Join(o.Dir, "conf.db")
	if out, err := exec.CommandContext(ctx, "ovsdb-tool", "create", dbFile, OVSSchema).CombinedOutput(); err != nil {
		return fmt.Errorf("ovsdb-tool create: %w: %s", err, out)
	}
	var err error
	o.db, err = o.spawn("ovsdb-server", dbFile,
		"--remote=punix:"+filepath.Join(o.Dir, "db.sock"),
		"--pidfile="+filepath.Join(o.Dir, "ovsdb-server.pid"),
		"--unixctl="+filepath.Join(o.Dir, "ovsdb-server.ctl"),
		"--log-file="+filepath.Join(o.Dir, "ovsdb-server.log"),
		"--no-chdir")
	if err != nil {
		return err
	}
	// The database answers once its socket is bound.
	for {
		_, err := o.Vsctl(ctx, "--no-wait", "init")
		if err == nil {
			break
		}
		if !o.db.running() || ctx.Err() != nil {
			return fmt.Errorf("ovsdb-server did not come up: %w: %s", err, tail(o.db.out.Bytes(), 1000))
		}
		time.Sleep(20 * time.Millisecond)
	}
	// ovs-vswitchd runs in the private namespace (through ip netns exec,
	// which execs it in place, so the parent-death signal stays armed): the
	// userspace datapath opens port devices in its own namespace.
	o.vswitchd, err = o.spawn("ip", "netns", "exec", o.NetNSName, "ovs-vswitchd", o.DB,
		"--pidfile="+filepath.Join(o.Dir, "ovs-vswitchd.pid"),
		"--unixctl="+filepath.Join(o.Dir, "ovs-vswitchd.ctl"),
		"--log-file="+filepath.Join(o.Dir, "ovs-vswitchd.log"),
		"--no-chdir")
	if err != nil {
		return err
	}
	o.vswitchd.name = "ovs-vswitchd"
	// datapath_type must be set in the add-br transaction: a plain add-br
	// leaves a dead bridge without the kernel datapath. Without --no-wait,
	// ovs-vsctl waits for ovs-vswitchd to apply it, so this also waits for
	// ovs-vswitchd to be up.
	var dpErr error
	o.Datapath, dpErr = ovsrun.PickDatapath(ctx)
	if o.Datapath != ovsrun.DatapathSystem && KernelRequires(FeatureOVSKernelDatapath) {
		return fmt.Errorf("%s requires the Open vSwitch kernel datapath and the kernel has no usable openvswitch module (%v)", KernelFeaturesEnv, dpErr)
	}
	if _, err := o.Vsctl(ctx, "--", "--may-exist", "add-br", o.Bridge, "--", "set", "Bridge", o.Bridge, "datapath_type="+o.Datapath); err != nil {
		return fmt.Errorf("create %s: %w; ovs-vswitchd: %s", o.Bridge, err, tail(o.vswitchd.out.Bytes(), 1000))
	}
	ofport, err := o.Vsctl(ctx, "get", "Interface", o.Bridge, "ofport")
	if err != nil || ofport != "65534" {
		return fmt.Errorf("bridge %s not working (ofport %q): %v; log in %s", o.Bridge, ofport, err, o.Dir)
	}
	return o.alive()
}

// spawn starts a daemon as a child process in its own process group that
// dies with the test binary, with Open vSwitch's run, log and database
// directories pointed at o.Dir.
func (o *OVS) spawn(name string, args ...string) (*daemon, error) {
	cmd := exec.Command(name, args...)
	cmd.Dir = o.Dir
	cmd.Env = append(os.Environ(), "OVS_RUNDIR="+o.Dir, "OVS_LOGDIR="+o.Dir, "OVS_DBDIR="+o.Dir)
	d := &daemon{name: name, cmd: cmd, exited: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = &d.out, &d.out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() {
		_ = cmd.Wait()
		close(d.exited)
	}()
	return d, nil
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
	select {
	case <-d.exited:
	case <-time.After(timeout):
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
