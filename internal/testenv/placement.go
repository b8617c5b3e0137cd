package testenv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
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

// PlacementToken is the token the private placement-api (noauth2) takes as
// an admin: send it as X-Auth-Token.
const PlacementToken = "admin"

// placementServer is a private placement-api process.
type placementServer struct {
	endpoint string // http://127.0.0.1:<port>/
	dir      string // config, sqlite database, log
	cmd      *exec.Cmd
	exited   chan struct{}
	log      *tailWriter
}

var (
	placementMu      sync.Mutex
	placementStopped bool
	placementStart   = sync.OnceValues(startPlacement)
	placementStop    sync.Once
)

// MustHavePlacement returns the endpoint ("http://127.0.0.1:<port>/") of a
// private placement-api (Debian's, Placement 8.0) with noauth2 and a
// sqlite database, as ENVIRONMENT.md describes. The first call starts it;
// every test of the process shares it, so tests must use unique provider
// names and consumer IDs and delete what they create. It skips (or fails
// in CI) when placement-api is not installed or does not come up.
//
// The process is started with a parent-death signal, so it dies with the
// test binary. Call [StopPlacement] from TestMain after m.Run to stop it
// and remove its files.
func MustHavePlacement(t testing.TB) string {
	t.Helper()
	p, err := placementStart()
	if err != nil {
		Missing(t, "placement-api: %v", err)
	}
	select {
	case <-p.exited:
		t.Fatalf("placement-api (pid %d) has exited: %s", p.cmd.Process.Pid, p.log.String())
	default:
	}
	return p.endpoint
}

// StopPlacement stops the private placement-api of [MustHavePlacement] if
// one was started, waits for it to exit and removes its directory. It is
// idempotent and safe to call when none was started; call it from
// TestMain after m.Run.
func StopPlacement() {
	placementStop.Do(func() {
		placementMu.Lock()
		placementStopped = true
		placementMu.Unlock()
		p, err := placementStart()
		if err != nil || p == nil {
			return
		}
		p.stop()
	})
}

// StartPlacement starts an extra private placement-api owned by t, with
// its own port and database, for tests that must not share one. It
// returns the endpoint and stop, which is idempotent and also runs at t's
// cleanup.
func StartPlacement(t testing.TB) (endpoint string, stop func()) {
	t.Helper()
	p, err := newPlacement()
	if err != nil {
		Missing(t, "placement-api: %v", err)
	}
	var once sync.Once
	stop = func() { once.Do(p.stop) }
	t.Cleanup(stop)
	return p.endpoint, stop
}

var errPlacementStopped = errors.New("StopPlacement was called")

func startPlacement() (*placementServer, error) {
	placementMu.Lock()
	stopped := placementStopped
	placementMu.Unlock()
	if stopped {
		return nil, errPlacementStopped
	}
	return newPlacement()
}

// newPlacement starts a placement-api in a new temporary directory.
func newPlacement() (*placementServer, error) {
	api, err := exec.LookPath("placement-api")
	if err != nil {
		return nil, fmt.Errorf("not installed: %w", err)
	}
	manage, err := exec.LookPath("placement-manage")
	if err != nil {
		return nil, fmt.Errorf("not installed: %w", err)
	}
	dir, err := os.MkdirTemp("", "dockervisor-placement-")
	if err != nil {
		return nil, err
	}
	p, err := launchPlacement(api, manage, dir)
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	return p, nil
}

func launchPlacement(api, manage, dir string) (*placementServer, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	conf := filepath.Join(dir, "placement.conf")
	// Four slashes: an absolute path. The config is found only through
	// OS_PLACEMENT_CONFIG_DIR.
	ini := fmt.Sprintf(`[DEFAULT]
debug = false
[api]
auth_strategy = noauth2
[placement_database]
connection = sqlite:///%s/placement.sqlite
`, dir)
	if err := os.WriteFile(conf, []byte(ini), 0o644); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	sync := exec.CommandContext(ctx, manage, "--config-file", conf, "db", "sync")
	sync.Dir = dir
	if out, err := sync.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("placement-manage db sync: %w: %s", err, tail(out, 2000))
	}
	cmd := exec.Command(api, "--host", "127.0.0.1", "--port", strconv.Itoa(port))
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "OS_PLACEMENT_CONFIG_DIR="+dir)
	// wsgiref logs every request to stderr; keep only a bounded tail.
	w := &tailWriter{buf: &bytes.Buffer{}, max: 64 << 10}
	cmd.Stdout, cmd.Stderr = w, w
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start placement-api: %w", err)
	}
	p := &placementServer{
		endpoint: "http://127.0.0.1:" + strconv.Itoa(port) + "/",
		dir:      dir,
		cmd:      cmd,
		exited:   make(chan struct{}),
		log:      w,
	}
	go func() {
		_ = cmd.Wait()
		close(p.exited)
	}()
	if err := waitHTTP(ctx, p.endpoint, p.exited); err != nil {
		_ = cmd.Process.Kill()
		<-p.exited
		return nil, fmt.Errorf("placement-api: %w: %s", err, w.String())
	}
	return p, nil
}

func (p *placementServer) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
	_ = os.RemoveAll(p.dir)
}

// waitHTTP polls GET url until it answers 200, exited is closed or ctx
// ends.
func waitHTTP(ctx context.Context, url string, exited <-chan struct{}) error {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	hc := &http.Client{Timeout: 2 * time.Second}
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
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
		case <-exited:
			return errors.New("exited during startup")
		case <-ctx.Done():
			return fmt.Errorf("no answer on %s: %w", url, ctx.Err())
		case <-tick.C:
		}
	}
}

// tailWriter keeps the last max bytes written to it.
type tailWriter struct {
	mu  sync.Mutex
	buf *bytes.Buffer
	max int
}

func (w *tailWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(b)
	if w.buf.Len() > w.max {
		keep := append([]byte(nil), w.buf.Bytes()[w.buf.Len()-w.max/2:]...)
		w.buf.Reset()
		w.buf.Write(keep)
	}
	return len(b), nil
}

func (w *tailWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return string(tail(w.buf.Bytes(), 2000))
}
