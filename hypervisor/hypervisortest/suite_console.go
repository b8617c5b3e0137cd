package hypervisortest

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dockervisor/dockervisor/hypervisor"
)

func testConsoleOutput(t *testing.T, e *env) {
	switch {
	case e.h.WriteConsole != nil:
		testConsoleWrite(t, e)
	case e.h.ConsoleCommand != nil:
		testConsoleCommand(t, e)
	default:
		t.Skip("Harness has neither WriteConsole nor ConsoleCommand")
	}
}

// waitConsole polls ConsoleOutput until it returns want.
func (e *env) waitConsole(t *testing.T, id string, want string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), e.stateTimeout)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		out, err := e.d.ConsoleOutput(ctx, id, hypervisor.ConsoleOptions{})
		if err == nil && string(out) == want {
			return
		}
		select {
		case <-ctx.Done():
			require.NoError(t, err, "ConsoleOutput")
			require.Equal(t, want, string(out), "console output after %s", e.stateTimeout)
			return
		case <-tick.C:
		}
	}
}

func (e *env) console(t *testing.T, id string, opts hypervisor.ConsoleOptions) string {
	t.Helper()
	out, err := e.d.ConsoleOutput(t.Context(), id, opts)
	require.NoError(t, err, "ConsoleOutput(%+v)", opts)
	return string(out)
}

// checkConsoleBounds checks TailLines and MaxBytes against the full output.
func (e *env) checkConsoleBounds(t *testing.T, id string, lines []string) {
	t.Helper()
	full := strings.Join(lines, "\n") + "\n"
	assert.Equal(t, full, e.console(t, id, hypervisor.ConsoleOptions{}), "all output")
	assert.Equal(t, strings.Join(lines[len(lines)-2:], "\n")+"\n",
		e.console(t, id, hypervisor.ConsoleOptions{TailLines: 2}), "TailLines 2")
	assert.Equal(t, full, e.console(t, id, hypervisor.ConsoleOptions{TailLines: len(lines) + 5}), "TailLines beyond the output")
	assert.Equal(t, full[len(full)-7:], e.console(t, id, hypervisor.ConsoleOptions{MaxBytes: 7}), "MaxBytes 7 keeps the last bytes")
	last := lines[len(lines)-1] + "\n"
	assert.Equal(t, last[len(last)-3:], e.console(t, id, hypervisor.ConsoleOptions{TailLines: 1, MaxBytes: 3}), "TailLines 1, MaxBytes 3")
	_, err := e.d.ConsoleOutput(t.Context(), id, hypervisor.ConsoleOptions{TailLines: -1})
	requireClass(t, err, hypervisor.ErrInvalidArgument, id, "negative TailLines")
	_, err = e.d.ConsoleOutput(t.Context(), id, hypervisor.ConsoleOptions{MaxBytes: -1})
	requireClass(t, err, hypervisor.ErrInvalidArgument, id, "negative MaxBytes")
}

func testConsoleWrite(t *testing.T, e *env) {
	spec := e.spec("console")
	e.spawn(t, spec)
	id := spec.ID
	assert.Empty(t, e.console(t, id, hypervisor.ConsoleOptions{}), "console of a new instance")

	e.h.WriteConsole(t, id, []byte("one\ntwo\n"))
	// The backend stamps output when it reads it, maybe later than the
	// write: stamp mid once the first lines are there, so that they are
	// certainly stamped before it, and write the next ones after it.
	e.waitConsole(t, id, "one\ntwo\n")
	mid := time.Now()
	time.Sleep(time.Millisecond)
	e.h.WriteConsole(t, id, []byte("three\nfour\nfive\n"))
	lines := []string{"one", "two", "three", "four", "five"}
	e.waitConsole(t, id, strings.Join(lines, "\n")+"\n")
	e.checkConsoleBounds(t, id, lines)
	assert.Equal(t, "three\nfour\nfive\n", e.console(t, id, hypervisor.ConsoleOptions{Since: mid}), "Since")
	assert.Equal(t, "five\n", e.console(t, id, hypervisor.ConsoleOptions{Since: mid, TailLines: 1}), "Since and TailLines")
	assert.Empty(t, e.console(t, id, hypervisor.ConsoleOptions{Since: time.Now().Add(time.Hour)}), "Since in the future")

	// The default bound keeps the last DefaultConsoleMaxBytes bytes.
	big := bytes.Repeat([]byte("0123456789abcde\n"), hypervisor.DefaultConsoleMaxBytes/16+64)
	e.h.WriteConsole(t, id, big)
	full := strings.Join(lines, "\n") + "\n" + string(big)
	e.waitConsole(t, id, full[len(full)-hypervisor.DefaultConsoleMaxBytes:])
}

func testConsoleCommand(t *testing.T, e *env) {
	lines := make([]string, 6)
	for i := range lines {
		lines[i] = fmt.Sprintf("line %d of %s", i, e.run)
	}
	spec := e.spec("console")
	spec.Command = e.h.ConsoleCommand(lines)
	start := time.Now()
	e.spawn(t, spec)
	id := spec.ID
	e.waitConsole(t, id, strings.Join(lines, "\n")+"\n")
	e.checkConsoleBounds(t, id, lines)
	assert.Equal(t, strings.Join(lines, "\n")+"\n",
		e.console(t, id, hypervisor.ConsoleOptions{Since: start.Add(-time.Minute)}), "Since before the spawn")
	time.Sleep(100 * time.Millisecond)
	assert.Empty(t, e.console(t, id, hypervisor.ConsoleOptions{Since: time.Now()}), "Since after all output")
}
