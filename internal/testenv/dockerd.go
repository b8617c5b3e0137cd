package testenv

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/dockervisor/dockervisor/image/busybox"
)

// EngineOptions configures a private Docker engine.
type EngineOptions struct {
	// TLS makes the engine also listen on tcp://127.0.0.1:<free port> with
	// --tlsverify, using a CA, server and client certificates made at
	// start (see Engine.TLS and Engine.WrongCA).
	TLS bool
	// CgroupDriver is the engine's cgroup driver, CgroupDriverCgroupfs
	// or CgroupDriverSystemd; empty is the one dockerd picks on this
	// host (DefaultCgroupDriver).
	CgroupDriver string
	// Runtimes registers OCI runtimes with the engine, by name: the path
	// of each runtime's binary ("runtimes" of its daemon.json).
	Runtimes map[string]string
}

// The cgroup drivers of dockerd.
const (
	CgroupDriverCgroupfs = "cgroupfs"
	CgroupDriverSystemd  = "systemd"
)

// DefaultCgroupDriver is the cgroup driver dockerd (20.10 and later)
// picks on this host: systemd where systemd runs a cgroup v2 host, as on
// Debian 12, Ubuntu 22.04 and RHEL 9, and cgroupfs otherwise.
func DefaultCgroupDriver() string {
	if SystemdRuns() && CgroupV2() {
		return CgroupDriverSystemd
	}
	return CgroupDriverCgroupfs
}

// SystemdRuns reports whether systemd is this host's init.
func SystemdRuns() bool {
	fi, err := os.Stat("/run/systemd/system")
	return err == nil && fi.IsDir()
}

// CgroupV2 reports whether this host runs the unified cgroup v2
// hierarchy at /sys/fs/cgroup.
func CgroupV2() bool {
	_, err := os.Stat("/sys/fs/cgroup/cgroup.controllers")
	return err == nil
}

// Engine is a private dockerd started by the test harness, as
// ENVIRONMENT.md describes ("Several Docker engines on one machine"): its
// own data root, exec root, pidfile, unix socket, cgroup parent and
// daemon.json (own deprecated-key-path, so its `docker info` ID is its
// own), a bridge of its own for its default network (never --bridge=none,
// with which dockerd deletes the host's docker0), no iptables, no
// masquerading, no IP forwarding.
type Engine struct {
	// Name tells engines apart: it is the engine's --label
	// dockervisor.test.engine=Name and part of its cgroup parent.
	Name string
	// CgroupDriver is the engine's cgroup driver.
	CgroupDriver string
	// Dir holds everything the engine writes.
	Dir string
	// Socket is the engine's unix endpoint ("unix://…/docker.sock"),
	// always present, also for a TLS engine.
	Socket string
	// TCP is "tcp://127.0.0.1:<port>" for a TLS engine, else empty.
	TCP string
	// TLS is a client identity the TLS engine accepts (ca.pem is the CA
	// that signed the engine's certificate).
	TLS TLSFiles
	// WrongCA is a client identity from an unrelated CA: its ca.pem does
	// not verify the engine and its certificate is not accepted by it.
	WrongCA TLSFiles
	// Client talks to the engine over its unix socket.
	Client *client.Client

	bin      string   // dockerd
	args     []string // its command line, kept for Restart
	bridge   string   // its default network's bridge, made at launch
	cmd      *exec.Cmd
	exited   chan struct{}
	log      *tailWriter
	stopOnce sync.Once
	stopErr  error
}

// engineBridgeName is the name of the bridge of the private engine
// named name (at most 15 bytes: the engine's name is MkdirTemp's
// decimal suffix, at most 10 digits).
func engineBridgeName(name string) string { return "dveb" + name }

// Host is the endpoint a remote user would use: TCP for a TLS engine, the
// unix socket otherwise.
func (e *Engine) Host() string {
	if e.TCP != "" {
		return e.TCP
	}
	return e.Socket
}

// cgroupParent is the directory, below the root of a cgroup hierarchy,
// where the engine puts its containers' cgroups: its own, so that
// engines' cgroups stay apart. With the systemd driver it is a slice of
// its own (systemd refuses a parent that is not a slice; the name has no
// dash, which would nest it in other slices).
func (e *Engine) cgroupParent() string {
	if e.CgroupDriver == CgroupDriverSystemd {
		return "dockervisor_test_" + e.Name + ".slice"
	}
	return "dockervisor-test-" + e.Name
}

// cgroupParentArg is the engine's --cgroup-parent.
func (e *Engine) cgroupParentArg() string {
	if e.CgroupDriver == CgroupDriverSystemd {
		return e.cgroupParent()
	}
	return "/" + e.cgroupParent()
}

// StartEngine starts a private engine owned by t and stops it (see
// [Engine.Stop]) when t ends. It skips (or fails in CI) when dockerd is not
// installed or the test does not run as root.
func StartEngine(t testing.TB, opts EngineOptions) *Engine {
	t.Helper()
	MustHaveRoot(t)
	e, err := NewEngine(opts)
	if err != nil {
		Missing(t, "private dockerd: %v", err)
	}
	t.Cleanup(func() {
		if err := e.Stop(); err != nil {
			t.Errorf("stop engine %s: %v", e.Name, err)
		}
	})
	return e
}

var (
	enginesMu      sync.Mutex
	enginesStopped bool
	enginesStart   = sync.OnceValues(startSharedEngines)
	enginesStop    sync.Once
)

// SharedEngineCount is the number of engines MustHaveEngines returns.
const SharedEngineCount = 3

// MustHaveEngines returns three private engines shared by every test of
// the process: two on unix sockets and the last over TCP with TLS. Tests
// must not stop or break them (use [StartEngine] for that), must use
// unique instance IDs, and must remove what they create. Each engine has
// the busybox test image loaded as [EngineBusybox]. Call [StopEngines]
// from TestMain after m.Run.
func MustHaveEngines(t testing.TB) []*Engine {
	t.Helper()
	MustHaveRoot(t)
	es, err := enginesStart()
	if err != nil {
		Missing(t, "private dockerd: %v", err)
	}
	for _, e := range es {
		select {
		case <-e.exited:
			t.Fatalf("engine %s has exited: %s", e.Name, e.log.String())
		default:
		}
	}
	return es
}

// AliasRuntime is a second name for runc, registered with every engine
// of MustHaveEngines (with crun, when it is installed), for the tests of a
// Driver's runtime option: a wrapper that notes its arguments in
// AliasRuntimeCalls's file before it runs runc.
const AliasRuntime = "dockervisor-test-runc"

var aliasRuntime struct {
	once sync.Once
	dir  string
	err  error
}

// aliasRuntimeDir makes, once, the directory of AliasRuntime's wrapper
// ("runc") and of the file where it notes its calls ("calls").
func aliasRuntimeDir() (string, error) {
	aliasRuntime.once.Do(func() {
		runc, err := exec.LookPath("runc")
		if err != nil {
			aliasRuntime.err = err
			return
		}
		dir, err := os.MkdirTemp("", "dvrt-")
		if err != nil {
			aliasRuntime.err = err
			return
		}
		script := "#!/bin/sh\nprintf '%s\\n' \"$*\" >>" + filepath.Join(dir, "calls") + "\nexec " + runc + " \"$@\"\n"
		aliasRuntime.dir, aliasRuntime.err = dir, os.WriteFile(filepath.Join(dir, "runc"), []byte(script), 0o755)
	})
	return aliasRuntime.dir, aliasRuntime.err
}

// AliasRuntimeCalls returns the calls of AliasRuntime so far, one line
// of arguments each.
func AliasRuntimeCalls() (string, error) {
	dir, err := aliasRuntimeDir()
	if err != nil {
		return "", err
	}
	b, err := os.ReadFile(filepath.Join(dir, "calls"))
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	return string(b), err
}

// sharedRuntimes are the runtimes the engines of MustHaveEngines
// register: AliasRuntime, and "crun" when crun is installed. An engine
// checks a runtime's binary only when a container runs under it.
func sharedRuntimes() (map[string]string, error) {
	dir, err := aliasRuntimeDir()
	if err != nil {
		return nil, fmt.Errorf("the runtime alias: %w", err)
	}
	rts := map[string]string{AliasRuntime: filepath.Join(dir, "runc")}
	if p, err := exec.LookPath("crun"); err == nil {
		rts["crun"] = p
	}
	return rts, nil
}

// CgroupHybrid reports whether this host mounts cgroup v1 hierarchies
// with the unified (v2) one beside them at /sys/fs/cgroup/unified, a
// layout crun refuses ("cgroups in hybrid mode not supported").
func CgroupHybrid() bool {
	if CgroupV2() {
		return false
	}
	_, err := os.Stat("/sys/fs/cgroup/unified/cgroup.controllers")
	return err == nil
}

// EngineBusybox is the busybox image reference loaded into every engine
// of MustHaveEngines.
const EngineBusybox = "dockervisor-test/busybox:engines"

// StopEngines stops the engines of MustHaveEngines, if they were started.
// It is idempotent.
func StopEngines() {
	enginesStop.Do(func() {
		enginesMu.Lock()
		enginesStopped = true
		enginesMu.Unlock()
		es, err := enginesStart()
		if err != nil {
			return
		}
		for _, e := range es {
			_ = e.Stop()
		}
		if aliasRuntime.dir != "" {
			_ = os.RemoveAll(aliasRuntime.dir)
		}
	})
}

func startSharedEngines() ([]*Engine, error) {
	enginesMu.Lock()
	stopped := enginesStopped
	enginesMu.Unlock()
	if stopped {
		return nil, errors.New("StopEngines was called")
	}
	runtimes, err := sharedRuntimes()
	if err != nil {
		return nil, err
	}
	var (
		es   = make([]*Engine, SharedEngineCount)
		errs = make([]error, SharedEngineCount)
		wg   sync.WaitGroup
	)
	for i := range es {
		wg.Go(func() {
			e, err := NewEngine(EngineOptions{TLS: i == SharedEngineCount-1, Runtimes: runtimes})
			if err == nil {
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				err = e.LoadBusybox(ctx, EngineBusybox)
				cancel()
			}
			es[i], errs[i] = e, err
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		for _, e := range es {
			if e != nil {
				_ = e.Stop()
			}
		}
		return nil, err
	}
	return es, nil
}

// LoadBusybox imports the busybox test image into the engine as ref.
func (e *Engine) LoadBusybox(ctx context.Context, ref string) error {
	return busybox.Import(ctx, e.Client, ref)
}

// NewEngine starts a private engine and waits until its API answers. The
// caller must call Stop.
func NewEngine(opts EngineOptions) (*Engine, error) {
	if runtime.GOOS != "linux" {
		return nil, errors.New("private Docker engines need Linux")
	}
	if os.Geteuid() != 0 {
		return nil, errors.New("needs root")
	}
	bin, err := exec.LookPath("dockerd")
	if err != nil {
		return nil, fmt.Errorf("not installed: %w", err)
	}
	// A short directory: the engine's containerd socket lives under it
	// and unix socket paths are limited to 108 bytes.
	dir, err := os.MkdirTemp("", "dve-")
	if err != nil {
		return nil, err
	}
	driver := opts.CgroupDriver
	switch driver {
	case "":
		driver = DefaultCgroupDriver()
	case CgroupDriverCgroupfs:
	case CgroupDriverSystemd:
		if !SystemdRuns() {
			_ = os.Remove(dir)
			return nil, errors.New("the systemd cgroup driver needs systemd as the host's init")
		}
	default:
		_ = os.Remove(dir)
		return nil, fmt.Errorf("unknown cgroup driver %q", driver)
	}
	e := &Engine{
		Name:         filepath.Base(dir)[len("dve-"):],
		CgroupDriver: driver,
		Dir:          dir,
		Socket:       "unix://" + filepath.Join(dir, "docker.sock"),
		log:          &tailWriter{buf: &bytes.Buffer{}, max: 64 << 10},
	}
	if err := e.launch(bin, opts); err != nil {
		_ = e.Stop()
		return nil, err
	}
	return e, nil
}

func (e *Engine) launch(bin string, opts EngineOptions) error {
	conf := map[string]any{"deprecated-key-path": filepath.Join(e.Dir, "key.json")}
	if len(opts.Runtimes) > 0 {
		rts := map[string]any{}
		for name, path := range opts.Runtimes {
			rts[name] = map[string]string{"path": path}
		}
		conf["runtimes"] = rts
	}
	cfg, err := json.Marshal(conf)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(e.Dir, "daemon.json"), cfg, 0o600); err != nil {
		return err
	}
	br, err := makeEngineBridge(e.Name)
	if err != nil {
		return err
	}
	e.bridge = br
	args := []string{
		"--config-file", filepath.Join(e.Dir, "daemon.json"),
		"--data-root", filepath.Join(e.Dir, "data"),
		"--exec-root", filepath.Join(e.Dir, "exec"),
		"--pidfile", filepath.Join(e.Dir, "docker.pid"),
		"-H", e.Socket,
		"--bridge=" + br, "--iptables=false", "--ip-masq=false", "--ip-forward=false",
		"--exec-opt", "native.cgroupdriver=" + e.CgroupDriver,
		"--cgroup-parent=" + e.cgroupParentArg(),
		"--label", "dockervisor.test.engine=" + e.Name,
	}
	if opts.TLS {
		t, err := makeEngineTLS(filepath.Join(e.Dir, "tls"))
		if err != nil {
			return fmt.Errorf("TLS material: %w", err)
		}
		e.TLS, e.WrongCA = t.client, t.wrongCA
		port, err := freePort()
		if err != nil {
			return err
		}
		e.TCP = "tcp://127.0.0.1:" + strconv.Itoa(port)
		args = append(args, "-H", e.TCP, "--tlsverify",
			"--tlscacert", t.server.CAFile, "--tlscert", t.server.CertFile, "--tlskey", t.server.KeyFile)
	}
	e.bin, e.args = bin, args
	if e.Client, err = client.New(client.WithHost(e.Socket)); err != nil {
		return err
	}
	return e.run()
}

// run starts dockerd with the engine's command line and waits until its
// API answers.
func (e *Engine) run() error {
	cmd := exec.Command(e.bin, e.args...)
	cmd.Stdout, cmd.Stderr = e.log, e.log
	cmd.SysProcAttr = daemonAttr()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start dockerd: %w", err)
	}
	exited := make(chan struct{})
	e.cmd, e.exited = cmd, exited
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
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
		case <-e.exited:
			return fmt.Errorf("dockerd exited during startup: %s", e.log.String())
		case <-ctx.Done():
			return fmt.Errorf("dockerd did not answer on %s: %w: %s", e.Socket, err, e.log.String())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Restart stops the engine's dockerd with SIGTERM, as a host shutdown
// does (it stops its running containers itself), and starts it again on
// the same data root, socket and certificates; it returns once the API
// answers.
func (e *Engine) Restart() error {
	_ = e.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-e.exited:
	case <-time.After(60 * time.Second):
		_ = e.cmd.Process.Kill()
		<-e.exited
	}
	return e.run()
}

// Kill kills the engine's dockerd with SIGKILL, as a crash would. Its
// containers' processes stay until Stop, like on a real host whose engine
// died; its API no longer answers.
func (e *Engine) Kill() {
	if e.cmd != nil && e.cmd.Process != nil {
		_ = e.cmd.Process.Kill()
		<-e.exited
	}
}

// Stop removes the engine's containers, stops it with SIGTERM (SIGKILL
// after 20 s), kills what it leaves behind (its containerd, shims and
// container processes, found by directory and cgroup), unmounts
// everything under its directory, removes its cgroup directories and then
// its directory. It is idempotent and works after Kill.
func (e *Engine) Stop() error {
	e.stopOnce.Do(func() { e.stopErr = e.stop() })
	return e.stopErr
}

func (e *Engine) stop() error {
	var errs []error
	if e.cmd != nil {
		select {
		case <-e.exited:
		default:
			// Remove containers first: stopping an engine with running
			// containers waits for each of them.
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			if list, err := e.Client.ContainerList(ctx, client.ContainerListOptions{All: true}); err == nil {
				for _, c := range list.Items {
					if _, err := e.Client.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true}); err != nil {
						errs = append(errs, fmt.Errorf("remove container %s: %w", c.ID, err))
					}
				}
			}
			cancel()
			_ = e.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-e.exited:
			case <-time.After(20 * time.Second):
				_ = e.cmd.Process.Kill()
				<-e.exited
			}
		}
	}
	if e.Client != nil {
		_ = e.Client.Close()
	}
	// What a crashed engine leaves: its containerd and shims (their
	// command lines name this directory) and container processes (in
	// its cgroups).
	for range 50 {
		pids := slices.Concat(e.processesByDir(), e.processesByCgroup())
		if len(pids) == 0 {
			break
		}
		for _, pid := range pids {
			if p, err := os.FindProcess(pid); err == nil {
				_ = p.Kill()
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := unmountUnder(e.Dir); err != nil {
		errs = append(errs, err)
	}
	if e.bridge != "" {
		if err := removeEngineBridge(e.Name); err != nil {
			errs = append(errs, err)
		}
	}
	if err := e.removeCgroups(); err != nil {
		errs = append(errs, err)
	}
	if err := os.RemoveAll(e.Dir); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// processesByDir returns the processes whose command line names e.Dir.
func (e *Engine) processesByDir() []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var pids []int
	self := os.Getpid()
	for _, ent := range ents {
		pid, err := strconv.Atoi(ent.Name())
		if err != nil || pid == self {
			continue
		}
		b, err := os.ReadFile("/proc/" + ent.Name() + "/cmdline")
		if err != nil {
			continue
		}
		if bytes.Contains(b, []byte(e.Dir+"/")) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// cgroupDirs returns the engine's cgroup directory in every hierarchy
// that has one: the unified one at /sys/fs/cgroup on cgroup v2, each
// controller's below it on cgroup v1.
func (e *Engine) cgroupDirs() []string {
	var dirs []string
	if fi, err := os.Stat(filepath.Join("/sys/fs/cgroup", e.cgroupParent())); err == nil && fi.IsDir() {
		dirs = append(dirs, filepath.Join("/sys/fs/cgroup", e.cgroupParent()))
	}
	ents, err := os.ReadDir("/sys/fs/cgroup")
	if err != nil {
		return dirs
	}
	for _, ent := range ents {
		d := filepath.Join("/sys/fs/cgroup", ent.Name(), e.cgroupParent())
		if fi, err := os.Stat(d); err == nil && fi.IsDir() {
			dirs = append(dirs, d)
		}
	}
	return dirs
}

func (e *Engine) processesByCgroup() []int {
	var pids []int
	for _, d := range e.cgroupDirs() {
		_ = filepath.WalkDir(d, func(p string, de os.DirEntry, err error) error {
			if err != nil || de.IsDir() || de.Name() != "cgroup.procs" {
				return nil
			}
			b, _ := os.ReadFile(p)
			for _, f := range strings.Fields(string(b)) {
				if pid, err := strconv.Atoi(f); err == nil {
					pids = append(pids, pid)
				}
			}
			return nil
		})
	}
	slices.Sort(pids)
	return slices.Compact(pids)
}

// removeCgroups removes the engine's cgroup directories, deepest first.
// With the systemd driver its slice is systemd's to remove: stopping the
// slice unit removes it (and ends what might still run in it).
func (e *Engine) removeCgroups() error {
	var errs []error
	if e.CgroupDriver == CgroupDriverSystemd && len(e.cgroupDirs()) > 0 {
		out, err := exec.Command("systemctl", "stop", e.cgroupParent()).CombinedOutput()
		if err != nil && !bytes.Contains(out, []byte("not loaded")) {
			errs = append(errs, fmt.Errorf("systemctl stop %s: %w: %s", e.cgroupParent(), err, out))
		}
	}
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
			for range 20 { // a dying process leaves its cgroup a moment later
				if err = os.Remove(p); err == nil || errors.Is(err, fs.ErrNotExist) {
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

// unmountUnder detaches every mount at or below dir, deepest first.
func unmountUnder(dir string) error {
	var errs []error
	for range 5 {
		mounts, err := mountsUnder(dir)
		if err != nil {
			return err
		}
		if len(mounts) == 0 {
			return nil
		}
		errs = errs[:0]
		for _, m := range mounts {
			if err := unmountDetach(m); err != nil {
				errs = append(errs, fmt.Errorf("unmount %s: %w", m, err))
			}
		}
	}
	return errors.Join(errs...)
}

// mountsUnder lists the mount points at or below dir from
// the calling thread's mountinfo (/proc/self is the main thread, which
// a goroutine of the process may hold in another mount namespace),
// longest path first.
func mountsUnder(dir string) ([]string, error) {
	f, err := os.Open("/proc/thread-self/mountinfo")
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
		mp := unescapeMount(fields[4])
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			out = append(out, mp)
		}
	}
	slices.SortFunc(out, func(a, b string) int { return len(b) - len(a) })
	return out, sc.Err()
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// EngineLeftovers reports what a stopped engine left behind: processes,
// mounts, cgroup directories, its directory. Empty means nothing.
func (e *Engine) EngineLeftovers() []string {
	var out []string
	for _, pid := range slices.Concat(e.processesByDir(), e.processesByCgroup()) {
		out = append(out, fmt.Sprintf("process %d", pid))
	}
	if ms, _ := mountsUnder(e.Dir); len(ms) > 0 {
		for _, m := range ms {
			out = append(out, "mount "+m)
		}
	}
	for _, d := range e.cgroupDirs() {
		out = append(out, "cgroup "+d)
	}
	if _, err := os.Stat(e.Dir); err == nil {
		out = append(out, "directory "+e.Dir)
	}
	if engineBridgeExists(e.Name) {
		out = append(out, "bridge "+engineBridgeName(e.Name))
	}
	return out
}
