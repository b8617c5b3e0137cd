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
	return placement.mustHave(t, "placement-api").endpoint
}

// StopPlacement stops the private placement-api of [MustHavePlacement] if
// one was started, waits for it to exit and removes its directory. It is
// idempotent and safe to call when none was started; call it from
// TestMain after m.Run.
func StopPlacement() { placement.stop() }

// StartPlacement starts an extra private placement-api owned by t, with
// its own port and database, for tests that must not share one. It
// returns the endpoint and stop, which is idempotent and also runs at t's
// cleanup.
func StartPlacement(t testing.TB) (endpoint string, stop func()) {
	t.Helper()
	p, stop := ownedService(t, "placement-api", newPlacement, syscall.SIGTERM)
	return p.endpoint, stop
}

// newPlacement starts a placement-api in a new temporary directory.
func newPlacement() (*service, error) {
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

func launchPlacement(api, manage, dir string) (*service, error) {
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
	if err := runSetup(ctx, dir, manage, "--config-file", conf, "db", "sync"); err != nil {
		return nil, err
	}
	cmd := exec.Command(api, "--host", "127.0.0.1", "--port", strconv.Itoa(port))
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "OS_PLACEMENT_CONFIG_DIR="+dir)
	endpoint := "http://127.0.0.1:" + strconv.Itoa(port) + "/"
	return launchService(ctx, "placement-api", dir, endpoint, endpoint, cmd)
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
