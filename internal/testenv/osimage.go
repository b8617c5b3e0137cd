package testenv

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/dockervisor/dockervisor/image/osimage"
)

// OSImageOptions are the options of the shared OS test image: the
// builder's defaults. Every test binary and every run builds the same
// image, so it is built once per machine and then found on the engine
// (keyed by the hash of these options); it is kept there on purpose.
var OSImageOptions = osimage.Options{}

// OSImageBuildLog is where the shared OS image's build writes its output.
var OSImageBuildLog = filepath.Join(osimage.DefaultCacheDir, "osimage-build.log")

var osImageOnce = sync.OnceValues(func() (osimage.Result, error) {
	cli, err := dockerProbe()
	if err != nil {
		return osimage.Result{}, err
	}
	if _, err := exec.LookPath("debootstrap"); err != nil {
		return osimage.Result{}, fmt.Errorf("debootstrap (Debian package debootstrap) is not installed: %w", err)
	}
	if err := os.MkdirAll(osimage.DefaultCacheDir, 0o755); err != nil {
		return osimage.Result{}, err
	}
	log, err := os.OpenFile(OSImageBuildLog, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return osimage.Result{}, err
	}
	defer log.Close()
	// A first build on a fresh machine takes a few minutes.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	opts := OSImageOptions
	opts.Log = log
	res, err := osimage.Build(ctx, cli, opts)
	if err != nil {
		return res, fmt.Errorf("build the OS test image (log: %s): %w", OSImageBuildLog, err)
	}
	return res, nil
})

// OSImage returns the shared OS test image (Debian with systemd,
// cloud-init and openssh-server, see package osimage), building it on
// the first call of the machine: once per test binary it is looked up,
// and it stays on the engine for later runs. A missing part (root, the
// engine, debootstrap) skips the test, or fails it in CI; a failed build
// fails it.
func OSImage(t testing.TB) osimage.Result {
	t.Helper()
	MustHaveDocker(t)
	if _, err := exec.LookPath("debootstrap"); err != nil {
		Missing(t, "debootstrap (Debian package debootstrap) is not installed")
	}
	res, err := osImageOnce()
	if err != nil {
		t.Fatalf("%v", err)
	}
	return res
}
