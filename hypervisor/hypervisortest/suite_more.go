package hypervisortest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dockervisor/dockervisor/hypervisor"
	"github.com/dockervisor/dockervisor/network"
)

func testEvents(t *testing.T, e *env) {
	if !e.caps.Events {
		evs, errc := e.d.Events(t.Context())
		for range evs {
		}
		err := <-errc
		requireUnsupportedOr(t, false, err, hypervisor.ErrNotSupported, "", "Events")
		return
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	evs, errc := e.d.Events(ctx)

	spec := e.spec("events")
	e.spawn(t, spec)
	id := spec.ID
	require.NoError(t, e.d.Pause(t.Context(), id))
	require.NoError(t, e.d.Unpause(t.Context(), id))
	require.NoError(t, e.d.PowerOff(t.Context(), id, hypervisor.StopOptions{Timeout: stopTimeout}))
	want := []hypervisor.EventType{
		hypervisor.EventStarted, hypervisor.EventPaused, hypervisor.EventUnpaused, hypervisor.EventStopped,
	}
	crashes := 0
	if e.h.Crash != nil {
		require.NoError(t, e.d.PowerOn(t.Context(), id))
		e.h.Crash(t, id)
		e.waitState(t, id, stC)
		want = append(want, hypervisor.EventStarted, hypervisor.EventCrashed)
		crashes = 1
	}
	require.NoError(t, e.d.Destroy(t.Context(), id))
	want = append(want, hypervisor.EventDestroyed)

	var got []hypervisor.EventType
	timeout := time.NewTimer(e.stateTimeout)
	defer timeout.Stop()
	for !containsSubsequence(got, want) {
		select {
		case ev, ok := <-evs:
			require.True(t, ok, "event channel closed early; events of %s: %v", id, got)
			if ev.ID != id {
				continue
			}
			assert.False(t, ev.Time.IsZero(), "time of event %s", ev.Type)
			if ev.Type == hypervisor.EventCrashed {
				assert.NotZero(t, ev.ExitCode, "exit code of a crash")
			}
			got = append(got, ev.Type)
		case err := <-errc:
			require.NoError(t, err, "event stream failed; events of %s: %v", id, got)
		case <-timeout.C:
			require.Failf(t, "missing events", "events of %s: %v, want the subsequence %v", id, got, want)
		}
	}
	n := 0
	for _, typ := range got {
		if typ == hypervisor.EventCrashed {
			n++
		}
	}
	assert.Equal(t, crashes, n, "crash events of %s: %v", id, got)

	cancel()
	closed := time.NewTimer(e.stateTimeout)
	defer closed.Stop()
	for evs != nil || errc != nil {
		select {
		case _, ok := <-evs:
			if !ok {
				evs = nil
			}
		case err, ok := <-errc:
			if !ok {
				errc = nil
				continue
			}
			assert.NoError(t, err, "error after the context was cancelled")
		case <-closed.C:
			require.Fail(t, "channels not closed after the context was cancelled")
		}
	}
}

func testConcurrency(t *testing.T, e *env) {
	if !e.caps.Pause {
		t.Skip("driver cannot pause")
	}
	a, b := e.spec("conc-a"), e.spec("conc-b")
	e.spawn(t, a)
	e.spawn(t, b)
	ctx := t.Context()
	const workers, rounds = 4, 4
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for r := range rounds {
				// Every call is valid or a no-op in the states the others
				// can leave the instance in, so none may fail.
				assert.NoError(t, e.d.Pause(ctx, a.ID), "worker %d round %d: Pause", w, r)
				info, err := e.d.Info(ctx, a.ID)
				if assert.NoError(t, err, "Info") {
					assert.Contains(t, []hypervisor.State{stR, stP}, info.State)
					assert.Positive(t, info.PID)
				}
				assert.NoError(t, e.d.Unpause(ctx, a.ID), "worker %d round %d: Unpause", w, r)
				if w%2 == 0 {
					assert.NoError(t, e.d.Pause(ctx, b.ID), "Pause b")
				} else {
					assert.NoError(t, e.d.Unpause(ctx, b.ID), "Unpause b")
				}
				_, err = e.d.Info(ctx, b.ID)
				assert.NoError(t, err, "Info b")
				_, err = e.d.List(ctx, hypervisor.ListOptions{Labels: map[string]string{labelRun: e.run}})
				assert.NoError(t, err, "List")
			}
		})
	}
	wg.Wait()
	require.NoError(t, e.d.Unpause(ctx, a.ID))
	require.NoError(t, e.d.Unpause(ctx, b.ID))
	assert.Equal(t, stR, e.info(t, a.ID).State)
	assert.Equal(t, stR, e.info(t, b.ID).State)
}

func testContext(t *testing.T, e *env) {
	spec := e.spec("ctx")
	e.spawn(t, spec)
	id := spec.ID
	before := e.info(t, id)

	cancelled, cancel := context.WithCancel(t.Context())
	cancel()
	check := func(err error, what string) {
		t.Helper()
		require.ErrorIs(t, err, context.Canceled, what)
		_, ok := errors.AsType[*hypervisor.OpError](err)
		assert.True(t, ok, "%s: error %q is not a *hypervisor.OpError", what, err)
	}

	other := e.spec("ctx-new")
	e.cleanupDestroy(t, other.ID)
	_, err := e.d.Spawn(cancelled, other)
	check(err, "Spawn")
	_, err = e.d.Info(t.Context(), other.ID)
	requireClass(t, err, hypervisor.ErrNotFound, other.ID, "Info after a cancelled Spawn")

	_, err = e.d.Info(cancelled, id)
	check(err, "Info")
	_, err = e.d.List(cancelled, hypervisor.ListOptions{})
	check(err, "List")
	check(e.d.PowerOff(cancelled, id, hypervisor.StopOptions{}), "PowerOff")
	check(e.d.Reboot(cancelled, id, hypervisor.RebootOptions{Hard: true}), "Reboot")
	check(e.d.Destroy(cancelled, id), "Destroy")
	if e.caps.Pause {
		check(e.d.Pause(cancelled, id), "Pause")
	}
	if e.caps.SoftDelete {
		check(e.d.SoftDelete(cancelled, id), "SoftDelete")
	}

	after := e.info(t, id)
	assert.Equal(t, stR, after.State)
	assert.Equal(t, before.PID, after.PID)
	assert.True(t, after.StartedAt.Equal(before.StartedAt), "StartedAt changed")
}

func testPowerOffTimeout(t *testing.T, e *env) {
	spec := e.spec("stop")
	e.spawn(t, spec)
	ctx := t.Context()
	// A negative timeout kills at once, even a process that ignores the
	// graceful signal (as sleep does when it is PID 1).
	start := time.Now()
	require.NoError(t, e.d.PowerOff(ctx, spec.ID, hypervisor.StopOptions{Timeout: -1}))
	assert.Less(t, time.Since(start), 5*time.Second, "PowerOff with a negative timeout")
	assert.Equal(t, stS, e.info(t, spec.ID).State)

	require.NoError(t, e.d.PowerOn(ctx, spec.ID))
	start = time.Now()
	require.NoError(t, e.d.PowerOff(ctx, spec.ID, hypervisor.StopOptions{Timeout: stopTimeout}))
	assert.Less(t, time.Since(start), stopTimeout+5*time.Second, "PowerOff with a timeout of %s", stopTimeout)
	info := e.info(t, spec.ID)
	assert.Equal(t, stS, info.State, "a driver-requested stop is a shutdown, whatever the exit status")
	assert.Zero(t, info.PID)
}

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
	time.Sleep(20 * time.Millisecond) // the timestamps must differ
	mid := time.Now()
	time.Sleep(20 * time.Millisecond)
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

func testVIFs(t *testing.T, e *env) {
	spec := e.spec("vifs")
	e.spawn(t, spec)
	id := spec.ID
	ctx := t.Context()
	if !e.caps.VIFs {
		err := e.d.PlugVIFs(ctx, id, []network.VIF{{ID: "hvt-port", Type: network.VIFTypeOVS}})
		requireUnsupportedOr(t, false, err, hypervisor.ErrNotSupported, id, "PlugVIFs")
		return
	}
	bad := network.VIF{Type: network.VIFTypeOVS} // no ID
	requireClass(t, e.d.PlugVIFs(ctx, id, []network.VIF{bad}), hypervisor.ErrInvalidArgument, id, "PlugVIFs of an invalid VIF")
	if e.h.VIF == nil {
		t.Skip("Harness.VIF is nil")
	}
	v0, v1, v2 := e.h.VIF(t, 0), e.h.VIF(t, 1), e.h.VIF(t, 2)
	require.NoError(t, e.d.PlugVIFs(ctx, id, []network.VIF{v0, v1}))
	require.NoError(t, e.d.PlugVIFs(ctx, id, []network.VIF{v0}), "PlugVIFs again")
	require.NoError(t, e.d.UnplugVIFs(ctx, id, []network.VIF{v1}))
	require.NoError(t, e.d.UnplugVIFs(ctx, id, []network.VIF{v1}), "UnplugVIFs again")
	require.NoError(t, e.d.UnplugVIFs(ctx, id, []network.VIF{v2}), "UnplugVIFs of a VIF never plugged")

	// The instance keeps running through all this, and restarts with its VIFs.
	require.NoError(t, e.d.Reboot(ctx, id, hypervisor.RebootOptions{Hard: true}))
	assert.Equal(t, stR, e.info(t, id).State)

	if !e.caps.HotplugVIF {
		requireUnsupportedOr(t, false, e.d.AttachInterface(ctx, id, v2), hypervisor.ErrNotSupported, id, "AttachInterface")
		return
	}
	require.NoError(t, e.d.AttachInterface(ctx, id, v2))
	require.NoError(t, e.d.DetachInterface(ctx, id, v2))
	require.NoError(t, e.d.DetachInterface(ctx, id, v2), "DetachInterface again")
	require.NoError(t, e.d.PowerOff(ctx, id, hypervisor.StopOptions{Timeout: -1}))
	requireStateError(t, e.d.AttachInterface(ctx, id, v2), id, stS, "AttachInterface to a shut-down instance")
	require.NoError(t, e.d.UnplugVIFs(ctx, id, []network.VIF{v0}), "UnplugVIFs of a shut-down instance")
}

func testSnapshot(t *testing.T, e *env) {
	spec := e.spec("snap")
	e.spawn(t, spec)
	id := spec.ID
	ctx := t.Context()
	before := e.info(t, id)
	meta, err := e.d.Snapshot(ctx, id, hypervisor.SnapshotRequest{
		Name:       "hypervisortest-" + e.run,
		Properties: map[string]string{"suite": "hypervisortest"},
	})
	if !e.caps.Snapshot {
		requireUnsupportedOr(t, false, err, hypervisor.ErrNotSupported, id, "Snapshot")
		return
	}
	require.NoError(t, err)
	assert.NotEmpty(t, meta.ID)
	assert.Equal(t, "hypervisortest-"+e.run, meta.Name)
	assert.Positive(t, meta.Size)
	assert.Equal(t, "hypervisortest", meta.Properties["suite"])
	after := e.info(t, id)
	assert.Equal(t, stR, after.State, "Snapshot does not change the state")
	assert.Equal(t, before.PID, after.PID)
}

func testHost(t *testing.T, e *env) {
	spec := e.spec("host")
	spec.VCPUs = 2
	e.spawn(t, spec)
	ctx := t.Context()

	h, err := e.d.HostResources(ctx)
	if e.caps.HostResources {
		require.NoError(t, err)
		assert.False(t, h.Time.IsZero(), "Time")
		assert.NotEmpty(t, h.Hostname)
		assert.NotEmpty(t, h.HypervisorType)
		assert.Positive(t, h.VCPUs)
		assert.GreaterOrEqual(t, h.VCPUsUsed, 2, "VCPUsUsed counts this instance")
		assert.Positive(t, h.MemoryMB)
		assert.GreaterOrEqual(t, h.MemoryClaimedMB, int64(64), "MemoryClaimedMB counts this instance")
		assert.LessOrEqual(t, h.MemoryUsedMB, h.MemoryMB)
		assert.GreaterOrEqual(t, h.Instances[stR.String()], 1, "running instances")

		nodes, err := e.d.AvailableNodes(ctx)
		require.NoError(t, err)
		require.NotEmpty(t, nodes)
		for _, n := range nodes {
			assert.NotEmpty(t, n)
		}
	} else {
		requireUnsupportedOr(t, false, err, hypervisor.ErrNotSupported, "", "HostResources")
	}

	s, err := e.d.InstanceStats(ctx, spec.ID)
	if !e.caps.InstanceStats {
		requireUnsupportedOr(t, false, err, hypervisor.ErrNotSupported, spec.ID, "InstanceStats")
		return
	}
	require.NoError(t, err)
	assert.Equal(t, spec.ID, s.ID)
	assert.False(t, s.Time.IsZero(), "Time")
	assert.Equal(t, uint64(64<<20), s.MemoryLimitBytes)
	assert.LessOrEqual(t, s.MemoryBytes, s.MemoryLimitBytes)
}
