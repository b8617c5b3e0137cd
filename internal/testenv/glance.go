package testenv

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// GlancePasteIni is the distro paste pipeline file that the private
// glance-api's config is paired with.
const GlancePasteIni = "/etc/glance/glance-api-paste.ini"

// glance is the private glance-api of this test process.
var glance = &sharedService{start: newGlance}

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
	return glance.mustHave(t, "glance-api").endpoint
}

// GlanceDataDir returns the directory where the private glance-api of
// [MustHaveGlance] keeps image data, one file per image ID. Tests use it to
// damage stored data behind Glance's back.
func GlanceDataDir(t testing.TB) string {
	t.Helper()
	return filepath.Join(glance.mustHave(t, "glance-api").dir, "images")
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
func StopGlance() { glance.stop() }

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
	g, stop := ownedService(t, "glance-api", newGlance, syscall.SIGKILL)
	return g.endpoint, stop
}

// newGlance starts a glance-api in a new temporary directory.
func newGlance() (*service, error) {
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

func launchGlance(api, manage, dir string, paste []byte) (*service, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	return launchGlanceOn(api, manage, dir, paste, port)
}

// launchGlanceOn starts a glance-api on port with its files in dir, which
// may hold the files of an earlier run (a restart).
func launchGlanceOn(api, manage, dir string, paste []byte, port int) (*service, error) {
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
	if err := runSetup(ctx, dir, manage, "--config-file", conf, "db_sync"); err != nil {
		return nil, err
	}
	cmd := exec.Command(api, "--config-file", conf)
	cmd.Dir = dir
	endpoint := "http://127.0.0.1:" + strconv.Itoa(port) + "/"
	g, err := launchService(ctx, "glance-api", dir, endpoint, endpoint+"versions", cmd)
	if err != nil {
		log, _ := os.ReadFile(filepath.Join(dir, "glance-api.log"))
		return nil, fmt.Errorf("%w: %s", err, tail(log, 2000))
	}
	return g, nil
}
