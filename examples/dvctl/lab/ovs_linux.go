package lab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// A lab with Open vSwitch networks runs a private Open vSwitch, as
// internal/ovsrun does for tests but detached, so that it outlives the
// process that brought the lab up: ovsdb-server and ovs-vswitchd with a run
// directory of their own (database, sockets, pid files, logs), ovs-vswitchd
// inside the lab's namespace, where the userspace datapath opens the port
// devices. Each ovs network is a bridge of that switch. Down deletes the
// bridges, stops both daemons and removes the run directory.

const ovsSchema = "/usr/share/openvswitch/vswitch.ovsschema"

// ovsRunDir returns the run directory of lab's switch: short, because
// unix socket paths are limited to 107 bytes, and unique per state
// directory and lab.
func ovsRunDir(stateDir, lab string) string {
	abs, err := filepath.Abs(stateDir)
	if err != nil {
		abs = stateDir
	}
	return filepath.Join("/run/dvctl", hash(abs, lab)[:16])
}

func ovsDB(dir string) string { return "unix:" + filepath.Join(dir, "db.sock") }

func ovsRun(ctx context.Context, dir, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "OVS_RUNDIR="+dir, "OVS_LOGDIR="+dir, "OVS_DBDIR="+dir)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("lab: %s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(errb.String()))
	}
	return strings.TrimSpace(out.String()), nil
}

func ovsVsctl(ctx context.Context, dir string, args ...string) (string, error) {
	return ovsRun(ctx, dir, "ovs-vsctl", append([]string{"--timeout=10", "--db=" + ovsDB(dir)}, args...)...)
}

// ovsRunning reports whether both daemons of the switch in dir answer.
func ovsRunning(ctx context.Context, dir string) bool {
	for _, d := range []string{"ovsdb-server", "ovs-vswitchd"} {
		if _, err := ovsRun(ctx, dir, "ovs-appctl", "--timeout=2", "-t", filepath.Join(dir, d+".ctl"), "version"); err != nil {
			return false
		}
	}
	return true
}

// ensureOVS starts the lab's switch in dir, with ovs-vswitchd in the
// namespace nsName, unless it is running; then it ensures the bridges.
func ensureOVS(ctx context.Context, dir, nsName string, bridges []string) error {
	if !ovsRunning(ctx, dir) {
		if err := stopOVS(ctx, dir, nil); err != nil { // leftovers of a crash
			return err
		}
		if err := startOVS(ctx, dir, nsName); err != nil {
			return errors.Join(err, stopOVS(ctx, dir, nil))
		}
	}
	for _, br := range bridges {
		// datapath_type in the add-br transaction: there is no kernel datapath.
		if _, err := ovsVsctl(ctx, dir, "--", "--may-exist", "add-br", br, "--", "set", "Bridge", br, "datapath_type=netdev"); err != nil {
			return err
		}
	}
	return nil
}

func startOVS(ctx context.Context, dir, nsName string) error {
	for _, bin := range []string{"ovsdb-tool", "ovsdb-server", "ovs-vswitchd", "ovs-vsctl", "ovs-appctl"} {
		if _, err := exec.LookPath(bin); err != nil {
			return fmt.Errorf("lab: Open vSwitch is not installed (openvswitch-switch): %w", err)
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	db := filepath.Join(dir, "conf.db")
	if _, err := ovsRun(ctx, dir, "ovsdb-tool", "create", db, ovsSchema); err != nil {
		return err
	}
	if _, err := ovsRun(ctx, dir, "ovsdb-server", db, "--remote=punix:"+filepath.Join(dir, "db.sock"),
		"--pidfile="+filepath.Join(dir, "ovsdb-server.pid"), "--unixctl="+filepath.Join(dir, "ovsdb-server.ctl"),
		"--log-file="+filepath.Join(dir, "ovsdb-server.log"), "--detach", "--no-chdir"); err != nil {
		return err
	}
	if _, err := ovsVsctl(ctx, dir, "--no-wait", "init"); err != nil {
		return err
	}
	// ip netns exec execs ovs-vswitchd in the namespace; it detaches there.
	_, err := ovsRun(ctx, dir, "ip", "netns", "exec", nsName, "ovs-vswitchd", ovsDB(dir),
		"--pidfile="+filepath.Join(dir, "ovs-vswitchd.pid"), "--unixctl="+filepath.Join(dir, "ovs-vswitchd.ctl"),
		"--log-file="+filepath.Join(dir, "ovs-vswitchd.log"), "--detach", "--no-chdir")
	return err
}

// stopOVS deletes the bridges, stops the daemons of the switch in dir (by
// their pid files, killing them if they do not exit) and removes dir. A
// switch that is not there is no error.
func stopOVS(ctx context.Context, dir string, bridges []string) error {
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if ovsRunning(ctx, dir) {
		for _, br := range bridges {
			_, _ = ovsVsctl(ctx, dir, "--if-exists", "del-br", br)
		}
	}
	_, _ = ovsRun(ctx, dir, "ovs-appctl", "--timeout=5", "-t", filepath.Join(dir, "ovs-vswitchd.ctl"), "exit", "--cleanup")
	_, _ = ovsRun(ctx, dir, "ovs-appctl", "--timeout=5", "-t", filepath.Join(dir, "ovsdb-server.ctl"), "exit")
	var errs []error
	for _, d := range []string{"ovs-vswitchd", "ovsdb-server"} {
		errs = append(errs, waitPidfile(filepath.Join(dir, d+".pid"), d))
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	_ = os.Remove(filepath.Dir(dir)) // /run/dvctl, when no other lab has a switch
	return nil
}

// waitPidfile waits up to 5 s for the process of the pid file to end, then
// kills it. It checks the process's name, so a reused PID is left alone.
func waitPidfile(path, name string) error {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return nil
	}
	alive := func() bool {
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return false
		}
		// "pid (comm) S ...": a zombie has ended.
		open, end := bytes.IndexByte(stat, '('), bytes.LastIndexByte(stat, ')')
		if open < 0 || end < 0 || end+2 >= len(stat) {
			return false
		}
		return string(stat[open+1:end]) == name[:min(len(name), 15)] && stat[end+2] != 'Z'
	}
	for deadline := time.Now().Add(5 * time.Second); alive(); {
		if time.Now().After(deadline) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			time.Sleep(100 * time.Millisecond)
			if alive() {
				return fmt.Errorf("lab: %s (pid %d) does not exit", name, pid)
			}
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil
}
