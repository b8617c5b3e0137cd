package testenv

import (
	"context"
	"crypto/rand"
	"fmt"
	"testing"

	"github.com/moby/moby/client"

	"github.com/dockervisor/dockervisor/image/busybox"
)

// BusyboxRootfs returns a tar of a minimal root file system: the static
// busybox from Debian's busybox-static with its common applets linked in
// /bin, plus /tmp and /etc/passwd.
func BusyboxRootfs(t testing.TB) []byte {
	t.Helper()
	b, err := busybox.Rootfs()
	if err != nil {
		Missing(t, "busybox test image: %v", err)
	}
	return b
}

// UniqueName returns prefix followed by a random hex suffix, for names of
// test objects that must not clash across parallel tests and runs.
func UniqueName(prefix string) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%s%x", prefix, b)
}

// BusyboxImage imports the busybox root file system into the engine under a
// tag unique to the test, and removes that tag when the test ends. It
// returns the image reference ("dockervisor-test/busybox:<random>").
func BusyboxImage(t testing.TB) string {
	t.Helper()
	cli := MustHaveDocker(t)
	ref := "dockervisor-test/busybox:" + UniqueName("t")
	ImportImage(t, cli, ref)
	return ref
}

// ImportImage imports the busybox root file system into the engine as ref
// (`docker import`), with /bin/sh as its command, and removes ref when the
// test ends.
func ImportImage(t testing.TB, cli *client.Client, ref string) {
	t.Helper()
	BusyboxRootfs(t)
	if err := busybox.Import(t.Context(), cli, ref); err != nil {
		t.Fatalf("%v", err)
	}
	RemoveImageOnCleanup(t, cli, ref)
}

// RemoveImageOnCleanup removes the image reference ref when the test ends.
func RemoveImageOnCleanup(t testing.TB, cli *client.Client, ref string) {
	t.Helper()
	t.Cleanup(func() {
		_, err := cli.ImageRemove(context.WithoutCancel(t.Context()), ref, client.ImageRemoveOptions{Force: true, PruneChildren: true})
		if err != nil && !isNotFound(err) {
			t.Errorf("cleanup: remove image %s: %v", ref, err)
		}
	})
}
