package testenv

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/moby/moby/client"
)

// BusyboxPath is where Debian's busybox-static puts the binary.
const BusyboxPath = "/bin/busybox"

// busyboxApplets are linked into /bin of the test image.
var busyboxApplets = []string{
	"sh", "sleep", "cat", "echo", "ping", "ip", "hostname", "ls", "ps",
	"kill", "true", "false", "dd", "wc", "ifconfig", "nc", "httpd", "wget",
	"head", "tail", "yes", "mkdir", "rm", "touch", "date", "env", "grep",
	"route", "arp", "seq", "od", "sha256sum", "uname", "id",
}

var rootfs = sync.OnceValues(func() ([]byte, error) {
	bin, err := os.ReadFile(BusyboxPath)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dirs := []string{"bin/", "tmp/", "etc/", "proc/", "sys/", "dev/", "root/", "var/", "var/www/"}
	for _, d := range dirs {
		mode := int64(0o755)
		if d == "tmp/" {
			mode = 0o1777
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d, Mode: mode}); err != nil {
			return nil, err
		}
	}
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "bin/busybox", Mode: 0o755, Size: int64(len(bin))}); err != nil {
		return nil, err
	}
	if _, err := tw.Write(bin); err != nil {
		return nil, err
	}
	for _, a := range busyboxApplets {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: "bin/" + a, Linkname: "busybox", Mode: 0o777}); err != nil {
			return nil, err
		}
	}
	passwd := []byte("root:x:0:0:root:/root:/bin/sh\n")
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "etc/passwd", Mode: 0o644, Size: int64(len(passwd))}); err != nil {
		return nil, err
	}
	if _, err := tw.Write(passwd); err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
})

// BusyboxRootfs returns a tar of a minimal root file system: the static
// busybox from Debian's busybox-static with its common applets linked in
// /bin, plus /tmp and /etc/passwd.
func BusyboxRootfs(t testing.TB) []byte {
	t.Helper()
	b, err := rootfs()
	if err != nil {
		Missing(t, "busybox test image: %v (install busybox-static)", err)
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
	ImportImage(t, cli, BusyboxRootfs(t), ref)
	return ref
}

// ImportImage imports a root file system tar into the engine as ref
// (`docker import`), with /bin/sh as its command, and removes ref when the
// test ends.
func ImportImage(t testing.TB, cli *client.Client, rootfsTar []byte, ref string) {
	t.Helper()
	ctx := t.Context()
	repo, tag, _ := strings.Cut(ref, ":")
	rc, err := cli.ImageImport(ctx, client.ImageImportSource{Source: bytes.NewReader(rootfsTar), SourceName: "-"}, repo,
		client.ImageImportOptions{Tag: tag, Changes: []string{`CMD ["/bin/sh"]`}})
	if err != nil {
		t.Fatalf("import %s: %v", ref, err)
	}
	err = drainJSONStream(rc)
	rc.Close()
	if err != nil {
		t.Fatalf("import %s: %v", ref, err)
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

// drainJSONStream reads an engine progress stream to its end and returns
// the first error message it carries.
func drainJSONStream(r io.Reader) error {
	dec := json.NewDecoder(r)
	for {
		var m struct {
			Error       string `json:"error"`
			ErrorDetail struct {
				Message string `json:"message"`
			} `json:"errorDetail"`
		}
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		if m.Error != "" {
			return errors.New(m.Error)
		}
	}
}
