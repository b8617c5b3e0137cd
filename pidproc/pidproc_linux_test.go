package pidproc_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dockervisor/dockervisor/errclass"
	"github.com/dockervisor/dockervisor/pidproc"
)

// TestOpenChecksTheCommandLine: a process is found by its PID file only
// when its command line has the argument; Terminate stops it.
func TestOpenChecksTheCommandLine(t *testing.T) {
	cmd := exec.Command("sleep", "3600")
	require.NoError(t, cmd.Start())
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() { _ = cmd.Process.Kill(); <-done })
	pidFile := filepath.Join(t.TempDir(), "sleep.pid")
	require.NoError(t, os.WriteFile(pidFile, []byte(strconv.Itoa(cmd.Process.Pid)+"\n"), 0o600))

	_, err := pidproc.Open(pidFile, "7200")
	require.ErrorIs(t, err, pidproc.ErrNotRunning, "another process behind the PID")
	assert.ErrorIs(t, err, errclass.ErrNotFound)
	_, err = pidproc.Open(filepath.Join(t.TempDir(), "none.pid"), "3600")
	require.ErrorIs(t, err, pidproc.ErrNotRunning, "no PID file")

	p, err := pidproc.Open(pidFile, "3600")
	require.NoError(t, err)
	assert.Equal(t, cmd.Process.Pid, p.PID)
	require.NoError(t, p.Terminate(t.Context()))
	<-done
	_, err = pidproc.Open(pidFile, "3600")
	require.ErrorIs(t, err, pidproc.ErrNotRunning, "exited")
}
