package testenv

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// PlacementToken is the token the private placement-api (noauth2) takes as
// an admin: send it as X-Auth-Token.
const PlacementToken = "admin"

// placement is the private placement-api of this test process.
var placement = &sharedService{start: newPlacement}

// MustHavePlacement returns the endpoint ("http://127.0.0.1:<port>/") of a
// private Placement (Debian's placement-api, Placement 8.0) with noauth2.
// The first call starts it; every test of the process shares it, so tests
// must use unique provider names and consumer IDs and delete what they
// create. It skips (or fails in CI) when placement-api, uwsgi or MariaDB
// is not installed or does not come up.
//
// It is served as Debian's packaging serves it: placement-api under uwsgi
// with [PlacementWorkers] worker processes, behind uwsgi's HTTP router,
// which keeps clients' connections alive (HTTP/1.1) and hands each
// request to a free worker. The database is a private MariaDB (own data
// directory and unix socket, no TCP, READ COMMITTED), because sqlite
// cannot take writers in several processes: Placement's write
// transactions read before they write, and sqlite refuses a second
// process's upgrade to a write lock at once with "database is locked"
// (journal and WAL mode alike), which Placement answers with HTTP 500.
// [placement] randomize_allocation_candidates is on, as Nova recommends
// where schedulers ask for fewer candidates than there are hosts.
//
// The processes are started with a parent-death signal, so they die with
// the test binary. Call [StopPlacement] from TestMain after m.Run to stop
// them and remove their files.
func MustHavePlacement(t testing.TB) string {
	t.Helper()
	return placement.mustHave(t, "placement-api").endpoint
}

// StopPlacement stops the private Placement of [MustHavePlacement] if one
// was started, waits for it to exit and removes its directory. It is
// idempotent and safe to call when none was started; call it from
// TestMain after m.Run.
func StopPlacement() { placement.stop() }

// StartPlacement starts an extra private Placement like the one of
// [MustHavePlacement], owned by t, with its own port and database, for
// tests that must not share one. It returns the endpoint and stop, which
// is idempotent and also runs at t's cleanup.
func StartPlacement(t testing.TB) (endpoint string, stop func()) {
	t.Helper()
	p, stop := ownedService(t, "placement-api", newPlacement, syscall.SIGTERM)
	return p.endpoint, stop
}

// PlacementWorkers is the number of placement-api worker processes:
// two per CPU (Debian's recommendation), from 2 to 8.
var PlacementWorkers = min(max(2*runtime.NumCPU(), 2), 8)

// newPlacement starts MariaDB and placement-api under uwsgi in a new
// temporary directory.
func newPlacement() (*service, error) {
	bins := map[string]string{}
	for _, name := range []string{"placement-api", "placement-manage", "uwsgi", "mariadbd", "mariadb-install-db"} {
		path, err := exec.LookPath(name)
		if err != nil {
			return nil, fmt.Errorf("not installed: %w", err)
		}
		bins[name] = path
	}
	dir, err := os.MkdirTemp("", "dockervisor-placement-")
	if err != nil {
		return nil, err
	}
	p, err := launchPlacement(bins, dir)
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	return p, nil
}

func launchPlacement(bins map[string]string, dir string) (*service, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	db, err := startMariaDB(ctx, bins, filepath.Join(dir, "mysql"), "placement")
	if err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		db.stop()
		return nil, err
	}
	conf := filepath.Join(dir, "placement.conf")
	// The config is found only through OS_PLACEMENT_CONFIG_DIR.
	ini := fmt.Sprintf(`[DEFAULT]
debug = false
[api]
auth_strategy = noauth2
[placement]
randomize_allocation_candidates = true
[placement_database]
connection = mysql+pymysql://root@localhost/placement?unix_socket=%s&charset=utf8mb4
`, db.socket)
	if err := os.WriteFile(conf, []byte(ini), 0o644); err != nil {
		db.stop()
		return nil, err
	}
	if err := runSetup(ctx, dir, bins["placement-manage"], "--config-file", conf, "db", "sync"); err != nil {
		db.stop()
		return nil, err
	}
	// The workers are forked from a master that loaded the application
	// once (oslo.db reconnects a database connection inherited across
	// the fork); the HTTP router keeps client connections alive and
	// passes each request to a free worker over a unix socket, so an idle
	// client connection never holds a worker (with --http11-socket each
	// idle keep-alive connection holds one for socket-timeout seconds).
	sock := filepath.Join(dir, "uwsgi.sock")
	cmd := exec.Command(bins["uwsgi"],
		"--plugins", "python3,http",
		"--master", "--processes", strconv.Itoa(PlacementWorkers),
		"--socket", sock,
		"--http", "127.0.0.1:"+strconv.Itoa(port), "--http-to", sock, "--http-keepalive",
		"--buffer-size", "65535",
		"--wsgi-file", bins["placement-api"],
		"--need-app", "--die-on-term", "--no-orphans", "--disable-logging",
	)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "OS_PLACEMENT_CONFIG_DIR="+dir)
	endpoint := "http://127.0.0.1:" + strconv.Itoa(port) + "/"
	s, err := launchService(ctx, "placement-api", dir, endpoint, endpoint, cmd)
	if err != nil {
		db.stop()
		return nil, err
	}
	s.after = db.stop
	return s, nil
}

// PlacementGet reads a path of the Placement at endpoint directly over
// HTTP at microversion, as any other Placement user would, and decodes
// the JSON answer into v. It also works in cleanups (its context is not
// t's).
func PlacementGet(t testing.TB, endpoint, microversion, path string, v any) {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, strings.TrimSuffix(endpoint, "/")+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Auth-Token", PlacementToken)
	req.Header.Set("OpenStack-API-Version", "placement "+microversion)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s: %s", path, resp.Status, b)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("GET %s: %v: %s", path, err, b)
	}
}
