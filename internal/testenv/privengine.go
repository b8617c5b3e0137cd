package testenv

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/moby/moby/client"
	"golang.org/x/sys/unix"

	"github.com/dockervisor/dockervisor/internal/busybox"
)

// PrivateEngine is a dockerd started by the test harness with its own
// data root, exec root, pidfile, unix socket, cgroup parent and
// daemon.json, no bridge, no iptables and no masquerading (see
// ENVIRONMENT.md, "Several Docker engines on one machine"), so that tests
// can stop, kill and restart it without touching the machine's engine.
// Its data survives a restart.
type PrivateEngine struct {
	Dir    string // everything the engine writes
	Host   string // "unix://<Dir>/docker.sock"
	Client *client.Client
	name   string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
	log    *os.File
}

// StartPrivateEngine starts a private engine for t, stopped and removed
// (containers, processes, mounts, cgroups, directory) when t ends. It
// skips (or fails in CI) without root or dockerd.
func StartPrivateEngine(t testing.TB) *PrivateEngine {
	t.Helper()
	MustHaveRoot(t)
	bin, err := exec.LookPath("dockerd")
	if err != nil {
		Missing(t, "dockerd is not installed: %v", err)
	}
	// Short: the engine's containerd socket path lives below it.
	dir, err := os.MkdirTemp("", "dvp-")
	if err != nil {
		t.Fatal(err)
	}
	e := &PrivateEngine{Dir: dir, Host: "unix://" + filepath.Join(dir, "docker.sock"), name: filepath.Base(dir)}
	t.Cleanup(func() {
		if err := e.Remove(); err != nil {
			t.Errorf("private engine: %v", err)
		}
	})
	cfg, _ := json.Marshal(map[string]any{"deprecated-key-path": filepath.Join(dir, "key.json")})
	if err := os.WriteFile(filepath.Join(dir, "daemon.json"), cfg, 0o600); err != nil {
		t.Fatal(err)
	}
	if e.Client, err = client.New(client.WithHost(e.Host)); err != nil {
		t.Fatal(err)
	}
	if err := e.start(bin); err != nil {
		t.Fatalf("private engine: %v", err)
	}
	return e
}

func (e *PrivateEngine) cgroupParent() string { return "dockervisor-priv-" + e.name }

func (e *PrivateEngine) start(bin string) error {
	log, err := os.OpenFile(filepath.Join(e.Dir, "dockerd.log"), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	cmd := exec.Command(bin,
		"--config-file", filepath.Join(e.Dir, "daemon.json"),
		"--data-root", filepath.Join(e.Dir, "data"),
		"--exec-root", filepath.Join(e.Dir, "exec"),
		"--pidfile", filepath.Join(e.Dir, "docker.pid"),
		"-H", e.Host,
		"--bridge=none", "--iptables=false", "--ip-masq=false",
		"--cgroup-parent=/"+e.cgroupParent(),
		"--label", "dockervisor.test.private="+e.name,
	)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := cmd.Start(); err != nil {
		log.Close()
		return fmt.Errorf("start dockerd: %w", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	e.mu.Lock()
	e.cmd, e.exited, e.log = cmd, exited, log
	e.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for {
		pctx, pcancel := context.WithTimeout(ctx, 2*time.Second)
		_, err := e.Client.Ping(pctx, client.PingOptions{NegotiateAPIVersion: true})
		pcancel()
		if err == nil {
			return nil
		}
		select {
		case <-exited:
			b, _ := os.ReadFile(filepath.Join(e.Dir, "dockerd.log"))
			return fmt.Errorf("dockerd exited during startup: %s", privTail(b))
		case <-ctx.Done():
			return fmt.Errorf("dockerd did not answer on %s: %w", e.Host, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func privTail(b []byte) string {
	if len(b) > 4096 {
		b = b[len(b)-4096:]
	}
	return string(b)
}

// LoadBusybox imports the busybox test image into the engine as ref.
func (e *PrivateEngine) LoadBusybox(t testing.TB, ref string) {
	t.Helper()
	BusyboxRootfs(t)
	if err := busybox.Import(t.Context(), e.Client, ref); err != nil {
		t.Fatal(err)
	}
}

// StopEngine stops the engine with SIGTERM, as a host shutdown does: it
// stops its running containers itself. It returns once dockerd exited.
func (e *PrivateEngine) StopEngine() error {
	e.mu.Lock()
	cmd, exited := e.cmd, e.exited
	e.mu.Unlock()
	if cmd == nil {
		return nil
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		<-exited
	}
	e.mu.Lock()
	e.cmd = nil
	if e.log != nil {
		e.log.Close()
	}
	e.mu.Unlock()
	return nil
}

// RestartEngine stops the engine (SIGTERM, which stops its containers)
// and starts it again on the same data root; it returns once the API
// answers.
func (e *PrivateEngine) RestartEngine() error {
	if err := e.StopEngine(); err != nil {
		return err
	}
	bin, err := exec.LookPath("dockerd")
	if err != nil {
		return err
	}
	return e.start(bin)
}

// Remove removes the engine's containers, stops it, kills what it left
// (its containerd, shims, container processes), unmounts everything below
// its directory, removes its cgroups and its directory. It is idempotent.
func (e *PrivateEngine) Remove() error {
	var errs []error
	e.mu.Lock()
	running := e.cmd != nil
	e.mu.Unlock()
	if running {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		if list, err := e.Client.ContainerList(ctx, client.ContainerListOptions{All: true}); err == nil {
			for _, c := range list.Items {
				if _, err := e.Client.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true}); err != nil {
					errs = append(errs, fmt.Errorf("remove container %s: %w", c.ID, err))
				}
			}
		}
		cancel()
		errs = append(errs, e.StopEngine())
	}
	for range 50 {
		pids := e.leftoverPIDs()
		if len(pids) == 0 {
			break
		}
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		time.Sleep(100 * time.Millisecond)
	}
	errs = append(errs, privUnmountBelow(e.Dir), e.removeCgroups())
	if _, err := os.Stat(e.Dir); err == nil {
		errs = append(errs, os.RemoveAll(e.Dir))
	}
	return errors.Join(errs...)
}

// leftoverPIDs returns processes naming the engine's directory on their
// command line, and processes in its cgroups.
func (e *PrivateEngine) leftoverPIDs() []int {
	var pids []int
	ents, _ := os.ReadDir("/proc")
	self := os.Getpid()
	for _, ent := range ents {
		pid, err := strconv.Atoi(ent.Name())
		if err != nil || pid == self {
			continue
		}
		b, err := os.ReadFile("/proc/" + ent.Name() + "/cmdline")
		if err == nil && strings.Contains(string(b), e.Dir+"/") {
			pids = append(pids, pid)
		}
	}
	for _, d := range e.cgroupDirs() {
		_ = filepath.WalkDir(d, func(p string, de os.DirEntry, err error) error {
			if err == nil && !de.IsDir() && de.Name() == "cgroup.procs" {
				b, _ := os.ReadFile(p)
				for _, f := range strings.Fields(string(b)) {
					if pid, err := strconv.Atoi(f); err == nil {
						pids = append(pids, pid)
					}
				}
			}
			return nil
		})
	}
	slices.Sort(pids)
	return slices.Compact(pids)
}

func (e *PrivateEngine) cgroupDirs() []string {
	ents, _ := os.ReadDir("/sys/fs/cgroup")
	var dirs []string
	for _, ent := range ents {
		for _, d := range []string{filepath.Join("/sys/fs/cgroup", ent.Name(), e.cgroupParent()), filepath.Join("/sys/fs/cgroup", e.cgroupParent())} {
			if fi, err := os.Stat(d); err == nil && fi.IsDir() && !slices.Contains(dirs, d) {
				dirs = append(dirs, d)
			}
		}
	}
	return dirs
}

func (e *PrivateEngine) removeCgroups() error {
	var errs []error
	for _, d := range e.cgroupDirs() {
		var dirs []string
		_ = filepath.WalkDir(d, func(p string, de os.DirEntry, err error) error {
			if err == nil && de.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		slices.Reverse(dirs)
		for _, p := range dirs {
			var err error
			for range 20 {
				if err = unix.Rmdir(p); err == nil || errors.Is(err, unix.ENOENT) {
					err = nil
					break
				}
				time.Sleep(50 * time.Millisecond)
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("remove cgroup %s: %w", p, err))
			}
		}
	}
	return errors.Join(errs...)
}

// Leftovers lists what the engine left after Remove: processes, mounts,
// cgroups, its directory. Empty means nothing.
func (e *PrivateEngine) Leftovers() []string {
	var out []string
	for _, pid := range e.leftoverPIDs() {
		out = append(out, fmt.Sprintf("process %d", pid))
	}
	ms, _ := privMountsBelow(e.Dir)
	for _, m := range ms {
		out = append(out, "mount "+m)
	}
	for _, d := range e.cgroupDirs() {
		out = append(out, "cgroup "+d)
	}
	if _, err := os.Stat(e.Dir); err == nil {
		out = append(out, "directory "+e.Dir)
	}
	return out
}

func privUnmountBelow(dir string) error {
	var errs []error
	for range 5 {
		ms, err := privMountsBelow(dir)
		if err != nil {
			return err
		}
		if len(ms) == 0 {
			return nil
		}
		errs = errs[:0]
		for _, m := range ms {
			if err := unix.Unmount(m, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
				errs = append(errs, fmt.Errorf("unmount %s: %w", m, err))
			}
		}
	}
	return errors.Join(errs...)
}

// privMountsBelow lists mount points at or below dir, deepest first.
func privMountsBelow(dir string) ([]string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		mp := strings.ReplaceAll(fields[4], `\040`, " ")
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			out = append(out, mp)
		}
	}
	slices.SortFunc(out, func(a, b string) int { return len(b) - len(a) })
	return out, sc.Err()
}
