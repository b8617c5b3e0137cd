package testarchive

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/dockervisor/dockervisor/internal/testenv"
)

// OCI compressions of the layers of [Spec.OCIArchive].
const (
	// Gzip layers (skopeo's default for OCI destinations).
	Gzip = "gzip"
	// Zstd layers, which the Docker 20.10 engine cannot load.
	Zstd = "zstd"
	// Plain (uncompressed) layers.
	Plain = "none"
)

// OCIArchive writes the archive as a docker-save file and has the real
// skopeo copy it into an OCI image-layout archive (`skopeo copy
// docker-archive:… oci-archive:…`) with layers compressed as compression
// ([Gzip], [Zstd] or [Plain]). It returns the path of the OCI archive, in
// a directory removed when tb ends.
func (s *Spec) OCIArchive(tb testing.TB, compression string) string {
	tb.Helper()
	dir := tb.TempDir()
	in := filepath.Join(dir, "docker-save.tar")
	f, err := os.Create(in)
	if err != nil {
		tb.Fatal(err)
	}
	_, err = s.WriteTo(f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		tb.Fatal(err)
	}
	out := filepath.Join(dir, "oci.tar")
	args := []string{"docker-archive:" + in, "oci-archive:" + out}
	switch compression {
	case Plain:
		args = append([]string{"--dest-oci-accept-uncompressed-layers"}, args...)
	default:
		args = append([]string{"--dest-compress-format", compression}, args...)
	}
	testenv.SkopeoCopy(tb, args...)
	if err := os.Remove(in); err != nil {
		tb.Fatal(err)
	}
	return out
}
