package docker

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dockervisor/dockervisor/hypervisor"
)

func TestTailBuffer(t *testing.T) {
	tb := &tailBuffer{max: 5}
	for _, s := range []string{"ab", "cd", "efg", "", "h"} {
		n, err := tb.Write([]byte(s))
		require.NoError(t, err)
		require.Equal(t, len(s), n)
	}
	assert.Equal(t, "defgh", string(tb.Bytes()))
	_, _ = tb.Write([]byte("0123456789"))
	assert.Equal(t, "56789", string(tb.Bytes()))
}

func TestConsoleOutput(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	spec := e.spec("con")
	// Lines alternate between stdout and stderr; then a marker after a
	// pause so that Since can split the log.
	spec.Command = []string{"sh", "-c", `for i in 1 2 3 4 5 6; do echo "out $i"; echo "err $i" >&2; done; sleep 1.5; echo late; trap 'exit 0' TERM; sleep 3600 & wait`}
	e.spawn(spec)
	require.Eventually(t, func() bool {
		b, err := e.drv.ConsoleOutput(ctx, "con", hypervisor.ConsoleOptions{})
		return err == nil && strings.Contains(string(b), "late")
	}, 20*time.Second, 100*time.Millisecond)

	all, err := e.drv.ConsoleOutput(ctx, "con", hypervisor.ConsoleOptions{})
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSpace(string(all)), "\n")
	require.Len(t, lines, 13, "stdout and stderr both, demultiplexed: %q", all)
	assert.NotContains(t, string(all), "\x01\x00\x00\x00", "no stream headers")
	var outs, errs []string
	for _, l := range lines {
		switch {
		case strings.HasPrefix(l, "out "):
			outs = append(outs, l)
		case strings.HasPrefix(l, "err "):
			errs = append(errs, l)
		}
	}
	// Each stream keeps its order; the engine does not order one stream
	// against the other.
	assert.Equal(t, []string{"out 1", "out 2", "out 3", "out 4", "out 5", "out 6"}, outs)
	assert.Equal(t, []string{"err 1", "err 2", "err 3", "err 4", "err 5", "err 6"}, errs)
	assert.Equal(t, "late", lines[12])

	tail, err := e.drv.ConsoleOutput(ctx, "con", hypervisor.ConsoleOptions{TailLines: 2})
	require.NoError(t, err)
	assert.Len(t, strings.Split(strings.TrimSpace(string(tail)), "\n"), 2)
	assert.True(t, strings.HasSuffix(string(tail), "late\n"))

	last, err := e.drv.ConsoleOutput(ctx, "con", hypervisor.ConsoleOptions{MaxBytes: 5})
	require.NoError(t, err)
	assert.Equal(t, "late\n", string(last), "MaxBytes keeps the last bytes")

	info, err := e.drv.Info(ctx, "con")
	require.NoError(t, err)
	since, err := e.drv.ConsoleOutput(ctx, "con", hypervisor.ConsoleOptions{Since: info.StartedAt.Add(time.Second)})
	require.NoError(t, err)
	assert.Equal(t, "late\n", string(since))

	_, err = e.drv.ConsoleOutput(ctx, "nope", hypervisor.ConsoleOptions{})
	assert.ErrorIs(t, err, hypervisor.ErrNotFound)
	_, err = e.drv.ConsoleOutput(ctx, "con", hypervisor.ConsoleOptions{TailLines: -1})
	assert.ErrorIs(t, err, hypervisor.ErrInvalidArgument)

	// The console survives a power cycle (the log is the instance's).
	require.NoError(t, e.drv.PowerOff(ctx, "con", hypervisor.StopOptions{}))
	off, err := e.drv.ConsoleOutput(ctx, "con", hypervisor.ConsoleOptions{})
	require.NoError(t, err)
	assert.Contains(t, string(off), "late")
}
