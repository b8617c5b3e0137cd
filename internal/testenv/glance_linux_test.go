package testenv

import (
	"bufio"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestMain(m *testing.M) {
	code := m.Run()
	StopGlance()
	StopPlacement()
	StopEngines()
	os.Exit(code)
}

func TestMustHaveGlance(t *testing.T) {
	ep := MustHaveGlance(t)
	resp, err := http.Get(ep + "v2/images")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, ep, MustHaveGlance(t), "one glance-api per process")
}

const glanceChildEnv = "DOCKERVISOR_TESTENV_GLANCE_CHILD"

// TestGlanceChild is the child of TestGlanceDiesWithTestProcess: it starts
// glance-api, prints its pid and waits to be killed.
func TestGlanceChild(t *testing.T) {
	if os.Getenv(glanceChildEnv) != "1" {
		t.Skip("helper process for TestGlanceDiesWithTestProcess")
	}
	MustHaveGlance(t)
	g, _ := glance.get()
	fmt.Printf("glance-pid=%d dir=%s\n", g.cmd.Process.Pid, g.dir)
	time.Sleep(time.Minute)
}

// TestGlanceDiesWithTestProcess kills a test process that started
// glance-api with SIGKILL (no TestMain, no cleanup) and checks that
// glance-api goes with it.
func TestGlanceDiesWithTestProcess(t *testing.T) {
	MustHaveGlance(t) // skip or fail like the rest when glance is missing
	cmd := exec.Command(os.Args[0], "-test.run=^TestGlanceChild$", "-test.v")
	cmd.Env = append(os.Environ(), glanceChildEnv+"=1")
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })

	var pid int
	var dir string
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "glance-pid="); ok {
			p, d, _ := strings.Cut(rest, " dir=")
			pid, err = strconv.Atoi(p)
			require.NoError(t, err)
			dir = d
			break
		}
	}
	require.NotZero(t, pid, "child did not start glance-api")
	t.Cleanup(func() { _ = os.RemoveAll(dir) }) // the killed child cannot remove it
	require.NoError(t, cmd.Process.Kill())
	_ = cmd.Wait()

	deadline := time.Now().Add(10 * time.Second)
	for {
		err := syscall.Kill(pid, 0)
		if errors.Is(err, syscall.ESRCH) {
			return
		}
		// A zombie waiting for init to reap it is dead too.
		if st, rerr := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); rerr == nil && strings.Contains(string(st), ") Z ") {
			return
		}
		if time.Now().After(deadline) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("glance-api (pid %d) outlived its test process", pid)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestStartGlance starts an extra glance-api beside the shared one, stops
// it and checks that it is gone while the shared one still answers.
func TestStartGlance(t *testing.T) {
	shared := MustHaveGlance(t)
	ep, stop := StartGlance(t)
	require.NotEqual(t, shared, ep, "a glance-api of its own")
	resp, err := http.Get(ep + "v2/images")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)

	stop()
	stop() // idempotent
	_, err = http.Get(ep + "v2/images")
	require.ErrorIs(t, err, syscall.ECONNREFUSED, "the extra glance-api is gone")
	resp, err = http.Get(shared + "v2/images")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, "the shared one is untouched")
}
