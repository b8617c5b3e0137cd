package testenv

import (
	"os/exec"
	"testing"
)

// MustHaveSkopeo returns the path of the skopeo binary (Debian's skopeo),
// which the image tests use to write OCI image-layout archives.
func MustHaveSkopeo(t testing.TB) string {
	t.Helper()
	SkipShort(t, "skopeo")
	p, err := exec.LookPath("skopeo")
	if err != nil {
		Missing(t, "skopeo: %v", err)
	}
	return p
}

// SkopeoCopy runs `skopeo copy --quiet ARGS...` (for example
// "docker-archive:in.tar", "oci-archive:out.tar") and fails t when it fails.
func SkopeoCopy(t testing.TB, args ...string) {
	t.Helper()
	bin := MustHaveSkopeo(t)
	cmd := exec.CommandContext(t.Context(), bin, append([]string{"copy", "--quiet"}, args...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("skopeo copy %v: %v\n%s", args, err, out)
	}
}
