// Package testenv gates tests on the real parts they need (root, a Docker
// engine, Glance) and builds what they share, such as the
// busybox test image.
//
// A missing part skips the test with a message naming the setup command.
// When the environment variable CI is "true", a missing part fails the test
// instead, so a green CI run always means the real tests ran. Under
// `go test -short` (scripts/test.sh --short, the fast tier) every test of
// a real part skips, whether the part is there or not, and CI or not: the
// short tier runs the pure-logic tests alone, with no root, no engine and
// nothing installed.
package testenv

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/client"
)

// SetupHint is the command that installs and starts the real parts.
const SetupHint = "run `scripts/setup.sh` as root (the README's test command does)"

// InCI reports whether the tests run in CI, where nothing may be skipped.
func InCI() bool { return os.Getenv("CI") == "true" }

// Missing skips t, or fails it in CI, because a part it needs is missing.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...) + ": " + SetupHint
	if InCI() {
		t.Fatalf("CI=true and a required part is missing: %s", msg)
	}
	t.Skip(msg)
}

// SkipShort skips t under -short: it tests a real part (what).
func SkipShort(t testing.TB, what string) {
	t.Helper()
	if testing.Short() {
		t.Skipf("-short: the test needs %s", what)
	}
}

// MustHaveRoot skips (or fails in CI) unless the test runs as root. Every
// test of a real part needs root here, so under -short it skips.
func MustHaveRoot(t testing.TB) {
	t.Helper()
	SkipShort(t, "root and the real parts")
	if os.Geteuid() != 0 {
		Missing(t, "test needs root")
	}
}

var dockerProbe = sync.OnceValues(func() (*client.Client, error) {
	cli, err := client.New(client.FromEnv)
	if err != nil {
		return nil, fmt.Errorf("docker client: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := cli.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true}); err != nil {
		cli.Close()
		return nil, fmt.Errorf("docker engine at %s does not answer: %w", cli.DaemonHost(), err)
	}
	return cli, nil
})

// MustHaveDocker returns a client of the real Docker engine, shared by the
// tests of the process, after a real ping. It skips (or fails in CI) when
// the engine does not answer.
func MustHaveDocker(t testing.TB) *client.Client {
	t.Helper()
	MustHaveRoot(t)
	cli, err := dockerProbe()
	if err != nil {
		Missing(t, "%v", err)
	}
	return cli
}
