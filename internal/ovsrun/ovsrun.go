package ovsrun

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
	"syscall"
	"time"
)

// Schema is the Open vSwitch database schema the database is created from.
const Schema = "/usr/share/openvswitch/vswitch.ovsschema"

// Bridge is the integration bridge Start creates.
const Bridge = "br-int"

// Switch is a running private Open vSwitch. Stop it with Stop.
type Switch struct {
	Dir       string // run directory: database, sockets, logs
	DB        string // "unix:<Dir>/db.sock", for ovs-vsctl --db and ovs.WithDB
	NetNSName string // the namespace ovs-vswitchd runs in, under /run/netns
	NetNS     string // its path, for ovs.WithHostNetNS
	Bridge    string // the integration bridge
	Datapath  string // the bridge's datapath type, DatapathSystem or DatapathNetdev

	procs    []*exec.Cmd
	stopOnce sync.Once
	stopErr  error
}

// Start starts a private Open vSwitch whose namespace is named name (it
// must not exist). On error everything started is stopped again.
func Start(ctx context.Context, name string) (*Switch, error) {
	for _, bin := range []string{"ovsdb-tool", "ovsdb-server", "ovs-vswitchd", "ovs-vsctl", "ovs-appctl", "ip"} {
		if _, err := exec.LookPath(bin); err != nil {
			return nil, fmt.Errorf("ovsrun: Open vSwitch not installed (run scripts/setup.sh): %w", err)
		}
	}
	dir, err := os.MkdirTemp("", "ovsrun-")
	if err != nil {
		return nil, err
	}
	s := &Switch{Dir: dir, DB: "unix:" + filepath.Join(dir, "db.sock"), NetNSName: name, NetNS: "/run/netns/" + name, Bridge: Bridge}
	if err := s.launch(ctx); err != nil {
		return nil, errors.Join(err, s.Stop())
	}
	return s, nil
}

func (s *Switch) launch(ctx context.Context) error {
	if err := run(ctx, "ip", "netns", "add", s.NetNSName); err != nil {
		return err
	}
	if err := run(ctx, "ip", "-n", s.NetNSName, "link", "set", "lo", "up"); err != nil {
		return err
	}
	db := filepath.Join(s.Dir, "conf.db")
	if err := run(ctx, "ovsdb-tool", "create", db, Schema); err != nil {
		return err
	}
	if err := s.spawn("ovsdb-server", db, "--remote=punix:"+filepath.Join(s.Dir, "db.sock"),
		"--unixctl="+filepath.Join(s.Dir, "ovsdb-server.ctl"), "--log-file="+filepath.Join(s.Dir, "ovsdb-server.log"), "--no-chdir"); err != nil {
		return err
	}
	wait, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		if _, err := s.Vsctl(wait, "--no-wait", "init"); err == nil {
			break
		} else if wait.Err() != nil {
			return fmt.Errorf("ovsrun: ovsdb-server did not come up: %w", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// ip netns exec execs ovs-vswitchd in place, in the namespace.
	if err := s.spawn("ip", "netns", "exec", s.NetNSName, "ovs-vswitchd", s.DB,
		"--unixctl="+filepath.Join(s.Dir, "ovs-vswitchd.ctl"), "--log-file="+filepath.Join(s.Dir, "ovs-vswitchd.log"), "--no-chdir"); err != nil {
		return err
	}
	// The kernel datapath where the kernel has it; else the userspace
	// one. datapath_type goes in the add-br transaction: a plain add-br
	// leaves a dead bridge where there is no kernel datapath. Without
	// --no-wait this waits for ovs-vswitchd too.
	s.Datapath, _ = PickDatapath(wait)
	if _, err := s.Vsctl(wait, "--", "--may-exist", "add-br", s.Bridge, "--", "set", "Bridge", s.Bridge, "datapath_type="+s.Datapath); err != nil {
		return fmt.Errorf("ovsrun: create %s: %w", s.Bridge, err)
	}
	return nil
}

func (s *Switch) spawn(name string, args ...string) error {
	cmd := exec.Command(name, args...)
	cmd.Dir = s.Dir
	cmd.Env = append(os.Environ(), "OVS_RUNDIR="+s.Dir, "OVS_LOGDIR="+s.Dir, "OVS_DBDIR="+s.Dir)
	// The daemons die with this process, whatever happens to it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("ovsrun: start %s: %w", name, err)
	}
	s.procs = append(s.procs, cmd)
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

// Stop deletes the integration bridge, stops both daemons (killing them
// after 5 s), deletes the namespace and removes the run directory. It is
// idempotent.
func (s *Switch) Stop() error {
	s.stopOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if len(s.procs) == 2 {
			_, _ = s.Vsctl(ctx, "--if-exists", "del-br", s.Bridge)
			_ = run(ctx, "ovs-appctl", "-t", filepath.Join(s.Dir, "ovs-vswitchd.ctl"), "exit", "--cleanup")
		}
		if len(s.procs) >= 1 {
			_ = run(ctx, "ovs-appctl", "-t", filepath.Join(s.Dir, "ovsdb-server.ctl"), "exit")
		}
		for i := len(s.procs) - 1; i >= 0; i-- {
			waitOrKill(s.procs[i], 5*time.Second)
		}
		var errs []error
		if _, err := os.Stat(s.NetNS); err == nil {
			errs = append(errs, run(ctx, "ip", "netns", "delete", s.NetNSName))
		}
		errs = append(errs, os.RemoveAll(s.Dir))
		s.stopErr = errors.Join(errs...)
	})
	return s.stopErr
}

func waitOrKill(cmd *exec.Cmd, timeout time.Duration) {
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(timeout):
		_ = cmd.Process.Kill()
		<-done
	}
}

func run(ctx context.Context, name string, args ...string) error {
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}
