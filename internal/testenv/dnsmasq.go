package testenv

import (
	"os"
	"os/exec"
	"testing"
)

// MustHaveDnsmasq skips (or fails in CI) unless root can run dnsmasq
// (Debian package dnsmasq-base).
func MustHaveDnsmasq(t testing.TB) {
	t.Helper()
	MustHaveRoot(t)
	if _, err := exec.LookPath("dnsmasq"); err == nil {
		return
	}
	if _, err := exec.LookPath("/usr/sbin/dnsmasq"); err != nil {
		Missing(t, "dnsmasq (Debian package dnsmasq-base) is not installed")
	}
}

// PublicTempDir returns a new directory under the system's temporary
// directory, searchable by every user (mode 0755), for a daemon that
// drops its privileges and still reads its files (dnsmasq), and removes
// it when the test ends.
func PublicTempDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "dvpub-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}
