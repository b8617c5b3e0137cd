package testenv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// GlancePasteIni is the distro paste pipeline file that the private
// glance-api's config is paired with.
const GlancePasteIni = "/etc/glance/glance-api-paste.ini"

// glanceServer is the private glance-api of this test process.
type glanceServer struct {
	endpoint string // http://127.0.0.1:<port>/
	dir      string // config, sqlite database, log, image files
	cmd      *exec.Cmd
	exited   chan struct{} // closed when the process has been reaped
}

var (
	glanceMu      sync.Mutex
	glanceStopped bool
	glanceStart   = sync.OnceValues(startGlance)
	glanceStop    sync.Once
)

// MustHaveGlance returns the endpoint ("http://127.0.0.1:<port>/") of a
// private, unauthenticated glance-api (Debian's, configured as in
// ENVIRONMENT.md: own config, sqlite, file store, paste flavor empty). The
// first call starts it; every test of the process shares it, so tests must
// use unique image names and delete what they create. It skips (or fails in
// CI) when glance-api is not installed or does not come up.
//
// The process is started with a parent-death signal, so it dies with the
// test binary. Call [StopGlance] from TestMain after m.Run to stop it and
// remove its files.
func MustHaveGlance(t testing.TB) string {
	t.Helper()
	g, err := glanceStart()
	if err != nil {
		Missing(t, "glance-api: %v", err)
	}
	select {
	case <-g.exited:
		t.Fatalf("glance-api (pid %d) has exited; log in %s", g.cmd.Process.Pid, filepath.Join(g.dir, "glance-api.log"))
	default:
	}
	return g.endpoint
}

// GlanceDataDir returns the directory where the private glance-api of
// [MustHaveGlance] keeps image data, one file per image ID. Tests use it to
// damage stored data behind Glance's back.
func GlanceDataDir(t testing.TB) string {
	t.Helper()
	MustHaveGlance(t)
	g, _ := glanceStart()
	return filepath.Join(g.dir, "images")
}

// StopGlance stops the private glance-api if one was started, waits for it
// to exit and removes its directory. It is idempotent and safe to call when
// none was started; call it from TestMain after m.Run:
//
//	func TestMain(m *testing.M) {
//		code := m.Run()
//		testenv.StopGlance()
//		os.Exit(code)
//	}
func StopGlance() {
	glanceStop.Do(func() {
		glanceMu.Lock()
		glanceStopped = true
		glanceMu.Unlock()
		g, err := glanceStart() // returns at once if started; otherwise refuses to start
		if err != nil || g == nil {
			return
		}
		g.stop(syscall.SIGTERM)
	})
}

var errGlanceStopped = errors.New("StopGlance was called")

// startGlance starts the per-process glance-api of MustHaveGlance, unless
// StopGlance was called first.
func startGlance() (*glanceServer, error) {
	glanceMu.Lock()
	stopped := glanceStopped
	glanceMu.Unlock()
	if stopped {
		return nil, errGlanceStopped
	}
	return newGlance()
}

// newGlance starts a glance-api in a new temporary directory.
func newGlance() (*glanceServer, error) {
	api, err := exec.LookPath("glance-api")
	if err != nil {
		return nil, fmt.Errorf("not installed: %w", err)
	}
	manage, err := exec.LookPath("glance-manage")
	if err != nil {
		return nil, fmt.Errorf("not installed: %w", err)
	}
	paste, err := os.ReadFile(GlancePasteIni)
	if err != nil {
		return nil, fmt.Errorf("paste pipeline: %w", err)
	}
	dir, err := os.MkdirTemp("", "dockervisor-glance-")
	if err != nil {
		return nil, err
	}
	g, err := launchGlance(api, manage, dir, paste)
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	return g, nil
}

// stop sends sig to the glance-api, waits for it to exit (killing it after
// 10 s) and removes its directory.
func (g *glanceServer) stop(sig syscall.Signal) {
	_ = g.cmd.Process.Signal(sig)
	select {
	case <-g.exited:
	case <-time.After(10 * time.Second):
		_ = g.cmd.Process.Kill()
		<-g.exited
	}
	_ = os.RemoveAll(g.dir)
}

// StartGlance starts an extra private glance-api owned by t, configured
// like the one of [MustHaveGlance] but with its own port, database and
// files, for tests that stop Glance and so must not share it. It returns
// the endpoint ("http://127.0.0.1:<port>/") and stop, which kills the
// process with SIGKILL, as a crash would, waits for it to exit and removes
// its files. stop is idempotent and also runs at t's cleanup; the process
// dies with the test binary too. Each call costs a few seconds of start-up.
// It skips (or fails in CI) when glance-api is not installed or does not
// come up.
func StartGlance(t testing.TB) (endpoint string, stop func()) {
	t.Helper()
	g, err := newGlance()
	if err != nil {
		Missing(t, "glance-api: %v", err)
	}
	var once sync.Once
	stop = func() { once.Do(func() { g.stop(syscall.SIGKILL) }) }
	t.Cleanup(stop)
	return g.endpoint, stop
}

func launchGlance(api, manage, dir string, paste []byte) (*glanceServer, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	return launchGlanceOn(api, manage, dir, paste, port)
}

// launchGlanceOn starts a glance-api on port with its files in dir, which
// may hold the files of an earlier run (a restart).
func launchGlanceOn(api, manage, dir string, paste []byte, port int) (*glanceServer, error) {
	for _, d := range []string{"images", "lock"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return nil, err
		}
	}
	conf := filepath.Join(dir, "glance-api.conf")
	// The paste file must sit beside the config as <name>-paste.ini.
	if err := os.WriteFile(filepath.Join(dir, "glance-api-paste.ini"), paste, 0o644); err != nil {
		return nil, err
	}
	ini := fmt.Sprintf(`[DEFAULT]
bind_host = 127.0.0.1
bind_port = %d
workers = 0
log_file = %[2]s/glance-api.log
[database]
connection = sqlite:///%[2]s/glance.sqlite
[paste_deploy]
flavor =
[glance_store]
stores = file
default_store = file
filesystem_store_datadir = %[2]s/images/
[oslo_concurrency]
lock_path = %[2]s/lock
`, port, dir)
	if err := os.WriteFile(conf, []byte(ini), 0o644); err != nil {
		return nil, err
	}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dbSync := exec.CommandContext(ctx, manage, "--config-file", conf, "db_sync")
	dbSync.Dir = dir
	if out, err := dbSync.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("glance-manage db_sync: %w: %s", err, tail(out, 2000))
	}

	cmd := exec.Command(api, "--config-file", conf)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stdout = &stderr
	cmd.Stderr = &stderr
	// Die with the test process, even when it is killed; own process
	// group so signals to the test's group do not race our shutdown.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start glance-api: %w", err)
	}
	g := &glanceServer{
		endpoint: "http://127.0.0.1:" + strconv.Itoa(port) + "/",
		dir:      dir,
		cmd:      cmd,
		exited:   make(chan struct{}),
	}
	go func() {
		_ = cmd.Wait()
		close(g.exited)
	}()
	if err := waitGlance(ctx, g); err != nil {
		_ = cmd.Process.Kill()
		<-g.exited
		log, _ := os.ReadFile(filepath.Join(dir, "glance-api.log"))
		return nil, fmt.Errorf("%w: %s %s", err, tail(stderr.Bytes(), 1000), tail(log, 2000))
	}
	return g, nil
}

// waitGlance polls /versions until glance answers, the process exits or
// ctx ends.
func waitGlance(ctx context.Context, g *glanceServer) error {
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	hc := &http.Client{Timeout: 2 * time.Second}
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, g.endpoint+"versions", nil)
		if err != nil {
			return err
		}
		if resp, err := hc.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-g.exited:
			return fmt.Errorf("glance-api exited during startup (%s)", g.cmd.ProcessState)
		case <-ctx.Done():
			return fmt.Errorf("glance-api did not answer on %s: %w", g.endpoint, ctx.Err())
		case <-tick.C:
		}
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}
