// Package busybox builds a minimal root file system around the static
// busybox binary of Debian's busybox-static, for test and demo images: no
// registry and no CLI are needed to make an image from it.
package busybox

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"

	"github.com/moby/moby/client"

	"github.com/dockervisor/dockervisor/errclass"
)

// Path is where Debian's busybox-static puts the binary.
const Path = "/bin/busybox"

// Applets are linked into /bin of the root file system.
var Applets = []string{
	"sh", "sleep", "cat", "echo", "ping", "ip", "hostname", "ls", "ps",
	"kill", "true", "false", "dd", "wc", "ifconfig", "nc", "httpd", "wget",
	"head", "tail", "yes", "mkdir", "rm", "touch", "date", "env", "grep",
	"route", "arp", "seq", "od", "sha256sum", "uname", "id", "top", "free",
}

var rootfs = sync.OnceValues(func() ([]byte, error) {
	bin, err := os.ReadFile(Path)
	if err != nil {
		return nil, fmt.Errorf("busybox: %w (install busybox-static)", err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	hdrs := []*tar.Header{}
	for _, d := range []string{"bin/", "tmp/", "etc/", "proc/", "sys/", "dev/", "root/", "var/", "var/www/"} {
		mode := int64(0o755)
		if d == "tmp/" {
			mode = 0o1777
		}
		hdrs = append(hdrs, &tar.Header{Typeflag: tar.TypeDir, Name: d, Mode: mode})
	}
	for _, h := range hdrs {
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
	}
	files := []struct {
		name string
		mode int64
		data []byte
	}{
		{"bin/busybox", 0o755, bin},
		{"etc/passwd", 0o644, []byte("root:x:0:0:root:/root:/bin/sh\n")},
	}
	for _, f := range files {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: f.name, Mode: f.mode, Size: int64(len(f.data))}); err != nil {
			return nil, err
		}
		if _, err := tw.Write(f.data); err != nil {
			return nil, err
		}
	}
	for _, a := range Applets {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: "bin/" + a, Linkname: "busybox", Mode: 0o777}); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
})

// Rootfs returns a tar of the root file system: the static busybox with its
// applets linked in /bin, plus /tmp and /etc/passwd. It is built once.
func Rootfs() ([]byte, error) { return rootfs() }

// Importer is the engine call Import needs; *client.Client has it.
type Importer interface {
	ImageImport(ctx context.Context, source client.ImageImportSource, ref string, options client.ImageImportOptions) (client.ImageImportResult, error)
}

// Import imports the root file system into the engine as ref ("repo:tag"),
// with /bin/sh as its command (`docker import`).
func Import(ctx context.Context, api Importer, ref string) error {
	fs, err := Rootfs()
	if err != nil {
		return err
	}
	repo, tag, _ := strings.Cut(ref, ":")
	rc, err := api.ImageImport(ctx, client.ImageImportSource{Source: bytes.NewReader(fs), SourceName: "-"}, repo,
		client.ImageImportOptions{Tag: tag, Changes: []string{`CMD ["/bin/sh"]`}})
	if err != nil {
		return fmt.Errorf("import %s: %w", ref, err)
	}
	defer rc.Close()
	if err := DrainJSONStream(rc); err != nil {
		return fmt.Errorf("import %s: %w", ref, err)
	}
	return nil
}

// ErrEngine is wrapped by errors an engine reports inside a progress
// stream. It is an [errclass.ErrUnavailable].
var ErrEngine = errclass.New("engine reported an error", errclass.ErrUnavailable)

// DrainJSONStream reads an engine progress stream to its end and returns
// the first error message it carries, wrapping ErrEngine.
func DrainJSONStream(r io.Reader) error {
	dec := json.NewDecoder(r)
	for {
		var m struct {
			Error string `json:"error"`
		}
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		if m.Error != "" {
			return fmt.Errorf("%w: %s", ErrEngine, m.Error)
		}
	}
}
