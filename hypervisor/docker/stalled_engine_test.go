package docker

import (
	"context"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/client"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dockervisor/dockervisor/hypervisor"
)

// stallingEngine is a unix-socket proxy to the real engine that holds every
// request matching stall, never passing it on, until the request's client
// gives up or release is called: a hung engine, for the requests chosen.
type stallingEngine struct {
	host    string // for WithDockerHost
	stalled chan struct{}
	release func()
}

func newStallingEngine(t *testing.T, cli *client.Client, stall func(*http.Request) bool) *stallingEngine {
	t.Helper()
	daemon, err := url.Parse(cli.DaemonHost())
	require.NoError(t, err)
	require.Equal(t, "unix", daemon.Scheme, "the proxy forwards to a unix socket")
	sock := filepath.Join(t.TempDir(), "engine.sock")
	ln, err := net.Listen("unix", sock)
	require.NoError(t, err)
	proxy := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.Out.URL.Scheme, r.Out.URL.Host = "http", "docker"
		},
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", daemon.Path)
		}},
		FlushInterval: -1,
	}
	release := make(chan struct{})
	var once sync.Once
	s := &stallingEngine{host: "unix://" + sock, stalled: make(chan struct{}, 16), release: func() { once.Do(func() { close(release) }) }}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if stall(r) {
			select {
			case s.stalled <- struct{}{}:
			default:
			}
			// A held request never reaches the engine: when released it
			// fails, as a request to a hung engine does in the end.
			select {
			case <-release:
				http.Error(w, "engine hung", http.StatusServiceUnavailable)
			case <-r.Context().Done():
			}
			return
		}
		proxy.ServeHTTP(w, r)
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() {
		s.release()
		_ = srv.Close()
	})
	return s
}

// waitStalled waits until a request has been held.
func (s *stallingEngine) waitStalled(t *testing.T) {
	t.Helper()
	select {
	case <-s.stalled:
	case <-time.After(time.Minute):
		t.Fatal("no request reached the stall")
	}
}

// A failed Spawn on an engine that hangs while it removes the container
// returns once the bounded rollback step gives up, instead of hanging.
func TestSpawnRollbackOnHungEngineIsBounded(t *testing.T) {
	e := newEnv(t)
	eng := newStallingEngine(t, e.cli, func(r *http.Request) bool {
		return r.Method == http.MethodDelete && strings.Contains(r.URL.Path, "/containers/")
	})
	d, err := New(append(e.opts, WithDockerHost(eng.host))...)
	require.NoError(t, err)
	t.Cleanup(func() { d.Close() })
	d.cleanupTimeout = time.Second
	d.postStart = append(d.postStart, postStartStep{name: "injected", run: func(context.Context, startedInstance) error { return errInjected }})

	done := make(chan error, 1)
	go func() {
		_, err := d.Spawn(t.Context(), e.spec("hung"))
		done <- err
	}()
	select {
	case err := <-done:
		require.ErrorIs(t, err, errInjected)
	case <-time.After(2 * time.Minute):
		eng.release()
		t.Fatal("Spawn did not return while the engine hung in its rollback")
	}
	// The container the rollback could not remove is still there; the
	// test's cleanup removes it through an engine that answers.
	assert.Equal(t, 1, e.containersNamed(e.drv.containerName("hung")))
}

// The connection state is not locked while the engine is pinged: Close
// returns while a first call waits for a hung ping.
func TestCloseDoesNotWaitForHungPing(t *testing.T) {
	e := newEnv(t)
	eng := newStallingEngine(t, e.cli, func(r *http.Request) bool { return strings.HasSuffix(r.URL.Path, "/_ping") })
	d, err := New(append(e.opts, WithDockerHost(eng.host))...)
	require.NoError(t, err)
	go func() { _, _ = d.List(t.Context(), hypervisor.ListOptions{}) }()
	eng.waitStalled(t)
	closed := make(chan error, 1)
	go func() { closed <- d.Close() }()
	select {
	case err := <-closed:
		require.NoError(t, err)
	case <-time.After(time.Minute):
		eng.release()
		t.Fatal("Close waited for the hung ping")
	}
}

// The host state is not locked while the engine's info call runs: an
// instance sample goes on while HostResources waits for a hung engine info.
func TestInstanceStatsDoesNotWaitForHungEngineInfo(t *testing.T) {
	e := newEnv(t)
	eng := newStallingEngine(t, e.cli, func(r *http.Request) bool { return strings.HasSuffix(r.URL.Path, "/info") })
	d, err := New(append(e.opts, WithDockerHost(eng.host))...)
	require.NoError(t, err)
	t.Cleanup(func() { d.Close() })
	_, err = d.Spawn(t.Context(), e.spec("hs"))
	require.NoError(t, err)
	_, err = d.InstanceStats(t.Context(), "hs") // first sample: the CPU baseline
	require.NoError(t, err)

	hostCtx, cancelHost := context.WithCancel(t.Context())
	defer cancelHost()
	go func() { _, _ = d.HostResources(hostCtx) }()
	eng.waitStalled(t)
	s, err := d.InstanceStats(t.Context(), "hs")
	require.NoError(t, err)
	assert.Equal(t, "hs", s.ID)
	cancelHost()
}
