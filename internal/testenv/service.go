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
	"sync"
	"syscall"
	"testing"
	"time"
)

// service is a private API server process (glance-api, placement-api)
// that a test binary starts: its own directory, port and database, and a
// parent-death signal so that it dies with the test process.
type service struct {
	name     string // the program, for messages
	endpoint string // http://127.0.0.1:<port>/
	dir      string // config, database, logs; removed by stop
	cmd      *exec.Cmd
	exited   chan struct{} // closed when the process has been reaped
	log      *tailWriter   // the tail of its stdout and stderr
	after    func()        // if set, run by stop once the process has exited (a database it used)
}

// launchService starts cmd (whose Dir is dir) as the service name and
// waits until readyURL answers 200. On failure it kills the process and
// returns an error with the tail of its output; the caller removes dir.
func launchService(ctx context.Context, name, dir, endpoint, readyURL string, cmd *exec.Cmd) (*service, error) {
	w := &tailWriter{buf: &bytes.Buffer{}, max: 64 << 10}
	cmd.Stdout, cmd.Stderr = w, w
	// Die with the test process, even when it is killed; own process
	// group so signals to the test's group do not race our shutdown.
	cmd.SysProcAttr = daemonAttr()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	s := &service{name: name, endpoint: endpoint, dir: dir, cmd: cmd, exited: make(chan struct{}), log: w}
	go func() {
		_ = cmd.Wait()
		close(s.exited)
	}()
	if err := waitHTTP(ctx, readyURL, s.exited); err != nil {
		_ = cmd.Process.Kill()
		<-s.exited
		return nil, fmt.Errorf("%s: %w: %s", name, err, w.String())
	}
	return s, nil
}

// stop sends sig to the process, waits for it to exit (killing it after
// 10 s), runs after and removes its directory.
func (s *service) stop(sig syscall.Signal) {
	terminate(s.cmd.Process, s.exited, sig, 10*time.Second)
	if s.after != nil {
		s.after()
	}
	_ = os.RemoveAll(s.dir)
}

// terminate sends sig to p and waits until exited is closed (p has been
// reaped), killing p when it has not exited after grace.
func terminate(p *os.Process, exited <-chan struct{}, sig syscall.Signal, grace time.Duration) {
	_ = p.Signal(sig)
	select {
	case <-exited:
	case <-time.After(grace):
		_ = p.Kill()
		<-exited
	}
}

// runSetup runs a one-shot command of a service (a database sync) in dir.
func runSetup(ctx context.Context, dir, name string, args ...string) error {
	c := exec.CommandContext(ctx, name, args...)
	c.Dir = dir
	if out, err := c.CombinedOutput(); err != nil {
		return fmt.Errorf("%s %v: %w: %s", name, args, err, tail(out, 2000))
	}
	return nil
}

// sharedService is the one service of its kind that the tests of a
// process share: the first get starts it, and after stop none starts.
type sharedService struct {
	start func() (*service, error)

	mu      sync.Mutex
	stopped bool
	started bool
	svc     *service
	err     error
}

var errServiceStopped = errors.New("the test process stopped its private services")

// get returns the shared service, starting it on first use. A failed
// start is remembered.
func (s *sharedService) get() (*service, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return nil, errServiceStopped
	}
	if !s.started {
		s.started = true
		s.svc, s.err = s.start()
	}
	return s.svc, s.err
}

// mustHave returns the running shared service, or skips (fails in CI)
// when it cannot start, and fails when it has died.
func (s *sharedService) mustHave(t testing.TB, program string) *service {
	t.Helper()
	SkipShort(t, program)
	svc, err := s.get()
	if err != nil {
		Missing(t, "%s: %v", program, err)
	}
	select {
	case <-svc.exited:
		t.Fatalf("%s (pid %d) has exited: %s", program, svc.cmd.Process.Pid, svc.log.String())
	default:
	}
	return svc
}

// stop stops the shared service if it was started; it is idempotent.
func (s *sharedService) stop() {
	s.mu.Lock()
	svc := s.svc
	s.stopped, s.svc = true, nil
	s.mu.Unlock()
	if svc != nil {
		svc.stop(syscall.SIGTERM)
	}
}

// ownedService starts a service owned by t (skipping, or failing in CI,
// when it cannot) and returns it with an idempotent stop that sends sig
// and also runs at t's cleanup.
func ownedService(t testing.TB, program string, start func() (*service, error), sig syscall.Signal) (*service, func()) {
	t.Helper()
	SkipShort(t, program)
	svc, err := start()
	if err != nil {
		Missing(t, "%s: %v", program, err)
	}
	var once sync.Once
	stop := func() { once.Do(func() { svc.stop(sig) }) }
	t.Cleanup(stop)
	return svc, stop
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
