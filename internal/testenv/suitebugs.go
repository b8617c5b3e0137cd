package testenv

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"testing"
)

// SuiteCatchesBugs checks that a conformance suite fails, in the right
// subtest, for implementations with known bugs. For each mode → subtest
// of bugs it runs the test binary's test named test in a subprocess with
// the environment variable env set to the mode (the test builds the
// buggy implementation from it, and skips when env is unset), and
// requires the run to fail with "--- FAIL: <test>/<subtest>" in its
// output. The modes run in parallel.
func SuiteCatchesBugs(t *testing.T, test, env string, bugs map[string]string) {
	t.Helper()
	if testing.Short() {
		t.Skip("runs the suite in subprocesses")
	}
	for mode, wantFail := range bugs {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^"+test+"$", "-test.count=1")
			cmd.Env = append(os.Environ(), env+"="+mode)
			out, err := cmd.CombinedOutput()
			var exit *exec.ExitError
			if !errors.As(err, &exit) {
				t.Fatalf("the suite passed an implementation with bug %q (%v):\n%s", mode, err, out)
			}
			if want := "--- FAIL: " + test + "/" + wantFail; !bytes.Contains(out, []byte(want)) {
				t.Errorf("bug %q: want %q in the output:\n%s", mode, want, out)
			}
		})
	}
}
