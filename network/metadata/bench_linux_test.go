package metadata_test

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dockervisor/dockervisor/configdrive"
	"github.com/dockervisor/dockervisor/internal/testenv"
	"github.com/dockervisor/dockervisor/network"
	"github.com/dockervisor/dockervisor/network/metadata"
)

// benchInstances is the number of registered instances.
const benchInstances = 100

// benchWorkers is the number of requests in flight: instances booting at
// once.
const benchWorkers = 8

// crawl is what cloud-init's OpenStack datasource reads, in its order.
var crawl = []string{
	"/openstack",
	"/openstack/2018-08-27/meta_data.json",
	"/openstack/2018-08-27/user_data",
	"/openstack/2018-08-27/vendor_data.json",
	"/openstack/2018-08-27/vendor_data2.json",
	"/openstack/2018-08-27/network_data.json",
	"/latest/meta-data/",
	"/latest/meta-data/instance-id",
	"/latest/meta-data/local-ipv4",
	"/latest/meta-data/public-keys/0/openssh-key",
}

// benchAddr is instance i's address: 127.1.0.i+1, a loopback address the
// client binds, so that the service tells the instances apart as it does
// on a network.
func benchAddr(i int) netip.Addr {
	return netip.AddrFrom4([4]byte{127, 1, byte((i + 1) / 250), byte((i+1)%250 + 1)})
}

func benchInstance(i int) configdrive.Instance {
	a := benchAddr(i)
	return configdrive.Instance{
		UUID: fmt.Sprintf("bench-%03d", i), Hostname: fmt.Sprintf("vm-%03d", i),
		Meta:     map[string]string{"role": "web", "index": fmt.Sprint(i)},
		UserData: []byte("#cloud-config\nruncmd:\n  - [ sh, -c, 'echo hello' ]\n"),
		Keys:     []configdrive.Key{{Name: "k", Data: pubKey}},
		VIFs: []network.VIF{{
			ID: fmt.Sprintf("port-%03d", i), Type: network.VIFTypeBridge, Bridge: "br0", NetworkID: "net1",
			Address: network.MAC{0x02, 0, 0, 0, byte(i >> 8), byte(i)},
			Subnets: []network.Subnet{{CIDR: netip.PrefixFrom(a, 16).Masked(), IPs: []netip.Addr{a}}},
		}},
		RandomSeed: []byte("seed"),
	}
}

// load sends n requests over w workers, each request on a new connection
// from instance k's address (as cloud-init's requests do), and returns the
// latencies and the wall time. url(k, path) names the request.
func load(tb testing.TB, n, w int, url func(k int, path string) string) ([]time.Duration, time.Duration) {
	tb.Helper()
	clients := make([]*http.Client, benchInstances)
	for k := range clients {
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: benchAddr(k).AsSlice()}, Timeout: 10 * time.Second}
		clients[k] = &http.Client{Transport: &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true}, Timeout: 30 * time.Second}
	}
	lat := make([]time.Duration, n)
	var (
		wg   sync.WaitGroup
		next = make(chan int)
		errs = make(chan error, w)
	)
	start := time.Now()
	for range w {
		wg.Go(func() {
			for j := range next {
				k := j % benchInstances
				t0 := time.Now()
				resp, err := clients[k].Get(url(k, crawl[(j/benchInstances)%len(crawl)]))
				if err == nil {
					_, err = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if err == nil && resp.StatusCode != http.StatusOK {
						err = fmt.Errorf("%s", resp.Status)
					}
				}
				if err != nil {
					select {
					case errs <- err:
					default:
					}
					return
				}
				lat[j] = time.Since(t0)
			}
		})
	}
	for j := range n {
		next <- j
	}
	close(next)
	wg.Wait()
	wall := time.Since(start)
	select {
	case err := <-errs:
		tb.Fatalf("request: %v", err)
	default:
	}
	return lat, wall
}

func p99(lat []time.Duration) time.Duration {
	s := slices.Clone(lat)
	slices.Sort(s)
	return s[len(s)*99/100]
}

// pythonServer serves dir with Python's own http.server (threading, one
// connection per request) on a free loopback port until the benchmark
// ends, and returns its address.
func pythonServer(tb testing.TB, dir string) string {
	tb.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	require.NoError(tb, err)
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	cmd := exec.Command(testenv.CloudInitPython, "-m", "http.server", "--bind", "127.0.0.1", "--directory", dir, fmt.Sprint(port))
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	require.NoError(tb, cmd.Start())
	tb.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.Dial("tcp4", addr)
		if err == nil {
			c.Close()
			return addr
		}
		if time.Now().After(deadline) {
			tb.Fatalf("python http.server on %s: %v", addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// BenchmarkService measures the metadata service at 100 registered
// instances, 8 requests in flight, a new connection per request (as
// cloud-init's), over cloud-init's crawl, against Python's own
// http.server serving the same answers as files in the same run.
// Reported: requests/s and p99 latency of both, and their ratios.
func BenchmarkService(b *testing.B) {
	testenv.MustHaveRoot(b)
	s, err := metadata.Open()
	require.NoError(b, err)
	defer s.Close()
	// The same answers as files, one directory per instance, for Python.
	dir := b.TempDir()
	for i := range benchInstances {
		require.NoError(b, s.Register(b.Context(), benchInstance(i)))
		for _, p := range crawl {
			req, _ := http.NewRequest(http.MethodGet, "http://x"+p, nil)
			req.RemoteAddr = benchAddr(i).String() + ":1"
			w := newRecorder()
			s.Handler("net1").ServeHTTP(w, req)
			require.Equal(b, http.StatusOK, w.status, p)
			f := filepath.Join(dir, fmt.Sprint(i), filepath.FromSlash(p))
			if p == "/openstack" || p == "/latest/meta-data/" {
				f = filepath.Join(f, "index.html") // a directory's listing
			}
			require.NoError(b, os.MkdirAll(filepath.Dir(f), 0o755))
			require.NoError(b, os.WriteFile(f, w.body, 0o644))
		}
	}
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	require.NoError(b, err)
	l, err := s.Serve(ln, "net1")
	require.NoError(b, err)
	goAddr := l.Addr().String()
	pyAddr := pythonServer(b, dir)

	n := max(b.N, 2000)
	// Warm both up, then measure them in turn.
	load(b, 200, benchWorkers, func(_ int, p string) string { return "http://" + goAddr + p })
	load(b, 200, benchWorkers, func(k int, p string) string { return fmt.Sprintf("http://%s/%d%s", pyAddr, k, p) })
	b.ResetTimer()
	goLat, goWall := load(b, n, benchWorkers, func(_ int, p string) string { return "http://" + goAddr + p })
	b.StopTimer()
	pyLat, pyWall := load(b, n, benchWorkers, func(k int, p string) string { return fmt.Sprintf("http://%s/%d%s", pyAddr, k, p) })

	goRate, pyRate := float64(n)/goWall.Seconds(), float64(n)/pyWall.Seconds()
	b.ReportMetric(goRate, "req/s")
	b.ReportMetric(float64(p99(goLat).Microseconds())/1000, "p99-ms")
	b.ReportMetric(pyRate, "python-req/s")
	b.ReportMetric(float64(p99(pyLat).Microseconds())/1000, "python-p99-ms")
	b.ReportMetric(goRate/pyRate, "rate-ratio")
	b.ReportMetric(float64(p99(pyLat))/float64(p99(goLat)), "p99-ratio")
}

// recorder is a minimal http.ResponseWriter.
type recorder struct {
	h      http.Header
	status int
	body   []byte
}

func newRecorder() *recorder { return &recorder{h: http.Header{}, status: http.StatusOK} }

func (r *recorder) Header() http.Header         { return r.h }
func (r *recorder) WriteHeader(code int)        { r.status = code }
func (r *recorder) Write(b []byte) (int, error) { r.body = append(r.body, b...); return len(b), nil }
