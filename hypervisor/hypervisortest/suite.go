package hypervisortest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dockervisor/dockervisor/errclass"
	"github.com/dockervisor/dockervisor/hypervisor"
	"github.com/dockervisor/dockervisor/image"
	"github.com/dockervisor/dockervisor/network"
)

// Harness is what [TestDriver] needs to exercise one backend.
type Harness struct {
	// Driver is a fresh driver, used by one subtest only. The suite closes
	// it when the subtest ends (after destroying the instances it spawned).
	Driver hypervisor.Driver
	// Image is an image reference this driver can spawn (a store image ID
	// when the driver has an image store).
	Image string
	// Command is a long-running command for Image, such as
	// {"sleep", "3600"} for busybox. Nil keeps the image's command, which
	// must then run until stopped.
	Command []string
	// MissingImage is an image reference that does not exist for this
	// driver. Empty means a random name.
	MissingImage string

	// Crash, if not nil, makes the process of running instance id exit by
	// itself with a non-zero status, without the driver asking (a real
	// backend kills it behind the driver's back). It may return before the
	// driver notices; the suite waits. Nil skips the crashed state.
	Crash func(t *testing.T, id string)
	// WriteConsole, if not nil, writes data to the console of running
	// instance id, as its process would.
	WriteConsole func(t *testing.T, id string, data []byte)
	// ConsoleCommand, if not nil, returns a command for Image that prints
	// lines, each followed by a newline, to stdout and then runs until
	// stopped. It is used when WriteConsole is nil; with neither, the
	// console checks are skipped.
	ConsoleCommand func(lines []string) []string
	// VIF, if not nil, returns the n-th (from 0) of distinct VIFs that the
	// driver can plug into an instance. Nil skips the VIF checks of a
	// driver whose Capabilities().VIFs is true.
	VIF func(t *testing.T, n int) network.VIF
	// Exec, if not nil, names commands for the exec and config drive
	// checks (see ExecCommands). Nil skips them.
	Exec *ExecCommands
	// ConsoleEchoCommand, if not nil, is a command for Image that answers
	// every line typed into its console with "echo: <line>" and runs until
	// stopped. Nil skips the console attach checks.
	ConsoleEchoCommand []string

	// BootFromSnapshot says the driver spawns and rebuilds from the image
	// IDs its Snapshot returns (it has an image store that holds its
	// snapshots). False skips those checks.
	BootFromSnapshot bool
	// Snapshots, if not nil, is the store Snapshot writes to: the suite
	// finds snapshots in it by instance_uuid and deletes them when it ends.
	Snapshots image.Store

	// StateTimeout bounds waits for the driver to notice asynchronous
	// changes (a crash, console output, events). Zero means 30 seconds.
	StateTimeout time.Duration
}

// stopTimeout is the graceful stop timeout the suite uses, so that a
// command that ignores SIGTERM (sleep as PID 1) does not slow it down much.
const stopTimeout = time.Second

// TestDriver runs the conformance suite of [hypervisor.Driver] against the
// drivers newHarness returns: one fresh harness per subtest, so subtests
// can run in parallel. It checks the state table of package hypervisor
// (every transition from running, paused, shut-down, crashed and
// soft-deleted instances, valid, no-op and invalid), spawn validation and
// idempotency, Destroy, missing and malformed IDs, the error types,
// events, per-ID serialisation, context cancellation, console bounds, VIFs,
// snapshots and host reporting, each as far as the driver's Capabilities
// and the harness's hooks allow. Every instance it spawns gets a unique ID
// and is destroyed when its subtest ends.
func TestDriver(t *testing.T, newHarness func(t *testing.T) Harness) {
	tests := []struct {
		name string
		fn   func(t *testing.T, e *env)
	}{
		{"Spawn", testSpawn},
		{"SpawnDuplicate", testSpawnDuplicate},
		{"SpawnInvalid", testSpawnInvalid},
		{"StateTable", testStateTable},
		{"Destroy", testDestroy},
		{"MissingAndInvalidID", testMissingAndInvalidID},
		{"Events", testEvents},
		{"Concurrency", testConcurrency},
		{"ReadsDuringTransitions", testReadsDuringTransitions},
		{"Context", testContext},
		{"PowerOffTimeout", testPowerOffTimeout},
		{"ConsoleOutput", testConsoleOutput},
		{"VIFs", testVIFs},
		{"Snapshot", testSnapshot},
		{"Rebuild", testRebuild},
		{"Host", testHost},
		{"Exec", testExec},
		{"ExecInvalidState", testExecInvalidState},
		{"ConsoleAttach", testConsoleAttach},
		{"ConfigDrive", testConfigDrive},
		{"NoConfigDrive", testNoConfigDrive},
		{"BootDataInvalid", testBootDataInvalid},
		{"UpdateMetadata", testUpdateMetadata},
		{"StatsDuringReboot", testStatsDuringReboot},
		{"Close", testClose},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.fn(t, newEnv(t, newHarness))
		})
	}
}

// env is one subtest's driver and helpers.
type env struct {
	h            Harness
	d            hypervisor.Driver
	caps         hypervisor.Capabilities
	run          string // unique per env, in a label of every instance
	stateTimeout time.Duration
}

// Labels the suite puts on its instances.
const (
	labelSuite = "hypervisortest"
	labelRun   = "hypervisortest-run"
)

func newEnv(t *testing.T, newHarness func(t *testing.T) Harness) *env {
	t.Helper()
	h := newHarness(t)
	require.NotNil(t, h.Driver, "Harness.Driver")
	require.NotEmpty(t, h.Image, "Harness.Image")
	t.Cleanup(func() { assert.NoError(t, h.Driver.Close(), "Close") })
	e := &env{h: h, d: h.Driver, caps: h.Driver.Capabilities(), run: randomHex(4), stateTimeout: h.StateTimeout}
	if e.stateTimeout <= 0 {
		e.stateTimeout = 30 * time.Second
	}
	return e
}

// newID returns a unique instance ID that is also a valid host name.
func newID(name string) string { return "hvt-" + name + "-" + randomHex(4) }

// spec returns a spec for a new instance of the harness's image.
func (e *env) spec(name string) hypervisor.InstanceSpec {
	return hypervisor.InstanceSpec{
		ID:       newID(name),
		Image:    e.h.Image,
		Command:  e.h.Command,
		VCPUs:    1,
		MemoryMB: 64,
		Labels:   map[string]string{labelSuite: "1", labelRun: e.run},
	}
}

// cleanupDestroy destroys id when t ends, even if t.Context is done.
func (e *env) cleanupDestroy(t *testing.T, id string) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(t.Context()), time.Minute)
		defer cancel()
		if err := e.d.Destroy(ctx, id); err != nil && !errors.Is(err, hypervisor.ErrInvalidArgument) {
			t.Errorf("cleanup: Destroy(%q): %v", id, err)
		}
	})
}

// spawn spawns spec, destroyed when t ends, and requires success.
func (e *env) spawn(t *testing.T, spec hypervisor.InstanceSpec) hypervisor.Instance {
	t.Helper()
	e.cleanupDestroy(t, spec.ID)
	inst, err := e.d.Spawn(t.Context(), spec)
	require.NoError(t, err, "Spawn(%q)", spec.ID)
	return inst
}

func (e *env) info(t *testing.T, id string) hypervisor.InstanceInfo {
	t.Helper()
	info, err := e.d.Info(t.Context(), id)
	require.NoError(t, err, "Info(%q)", id)
	return info
}

// waitState polls Info until id is in state want.
func (e *env) waitState(t *testing.T, id string, want hypervisor.State) hypervisor.InstanceInfo {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), e.stateTimeout)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		info, err := e.d.Info(ctx, id)
		if err == nil && info.State == want {
			return info
		}
		select {
		case <-ctx.Done():
			require.NoError(t, err, "Info(%q) while waiting for state %s", id, want)
			require.Equal(t, want, info.State, "state of %q after waiting %s", id, e.stateTimeout)
			return info
		case <-tick.C:
		}
	}
}

// requireClass requires err to be an *OpError for id that wraps class (an
// error class, or a sentinel that refines one, such as
// hypervisor.ErrImageNotFound) and exactly one error class.
func requireClass(t *testing.T, err, class error, id string, msgAndArgs ...any) {
	t.Helper()
	require.Error(t, err, msgAndArgs...)
	require.ErrorIs(t, err, class, msgAndArgs...)
	want := errclass.Matching(class)
	require.Len(t, want, 1, "%v is not of one error class", class)
	assert.Equal(t, want, errclass.Matching(err), "error %q wraps exactly the class of %v", err, class)
	requireOpError(t, err, id, msgAndArgs...)
}

// requireOpError requires err to hold an *OpError for id.
func requireOpError(t *testing.T, err error, id string, msgAndArgs ...any) {
	t.Helper()
	oe, ok := errors.AsType[*hypervisor.OpError](err)
	require.True(t, ok, "error %q is not a *hypervisor.OpError", err)
	assert.Equal(t, id, oe.ID, msgAndArgs...)
	assert.NotEmpty(t, oe.Op, msgAndArgs...)
}

// requireStateError requires err to be an invalid-state *OpError for id
// whose *StateError names current.
func requireStateError(t *testing.T, err error, id string, current hypervisor.State, msgAndArgs ...any) {
	t.Helper()
	requireClass(t, err, hypervisor.ErrInvalidState, id, msgAndArgs...)
	se, ok := errors.AsType[*hypervisor.StateError](err)
	require.True(t, ok, "error %q holds no *hypervisor.StateError", err)
	assert.Equal(t, current, se.Current, msgAndArgs...)
	assert.Equal(t, id, se.ID, msgAndArgs...)
	assert.NotContains(t, se.Want, current, msgAndArgs...)
}

// requireUnsupportedOr requires err to be class, or ErrNotSupported when
// supported is false.
func requireUnsupportedOr(t *testing.T, supported bool, err, class error, id string, msgAndArgs ...any) {
	t.Helper()
	if !supported && errors.Is(err, hypervisor.ErrNotSupported) {
		require.ErrorIs(t, err, errors.ErrUnsupported, msgAndArgs...)
		requireOpError(t, err, id, msgAndArgs...)
		return
	}
	requireClass(t, err, class, id, msgAndArgs...)
}

// listIDs returns the IDs List returns for opts.
func (e *env) listIDs(t *testing.T, opts hypervisor.ListOptions) []string {
	t.Helper()
	list, err := e.d.List(t.Context(), opts)
	require.NoError(t, err, "List")
	ids := make([]string, 0, len(list))
	for _, inst := range list {
		ids = append(ids, inst.ID)
	}
	return ids
}

// hasProcess reports whether an instance in state s has a process.
func hasProcess(s hypervisor.State) bool {
	return s == hypervisor.StateRunning || s == hypervisor.StatePaused
}

// checkPID checks the PID rule: >0 only while running or paused.
func checkPID(t *testing.T, info hypervisor.InstanceInfo, msgAndArgs ...any) {
	t.Helper()
	if hasProcess(info.State) {
		assert.Positive(t, info.PID, msgAndArgs...)
	} else {
		assert.Zero(t, info.PID, msgAndArgs...)
	}
}

func containsSubsequence(have, want []hypervisor.EventType) bool {
	i := 0
	for _, h := range have {
		if i < len(want) && h == want[i] {
			i++
		}
	}
	return i == len(want)
}

// establish brings id from whatever state it is in to want.
func (e *env) establish(t *testing.T, id string, want hypervisor.State) {
	t.Helper()
	ctx := t.Context()
	cur := e.info(t, id).State
	if cur == want {
		return
	}
	var err error
	switch cur {
	case hypervisor.StateSoftDeleted:
		err = e.d.Restore(ctx, id)
	case hypervisor.StatePaused:
		err = e.d.Unpause(ctx, id)
	case hypervisor.StateShutdown, hypervisor.StateCrashed, hypervisor.StateCreated:
		err = e.d.PowerOn(ctx, id)
	}
	require.NoError(t, err, "bring %q from %s to running", id, cur)
	switch want {
	case hypervisor.StatePaused:
		err = e.d.Pause(ctx, id)
	case hypervisor.StateShutdown:
		err = e.d.PowerOff(ctx, id, hypervisor.StopOptions{Timeout: stopTimeout})
	case hypervisor.StateCrashed:
		require.NotNil(t, e.h.Crash, "Harness.Crash")
		e.h.Crash(t, id)
		e.waitState(t, id, hypervisor.StateCrashed)
	case hypervisor.StateSoftDeleted:
		err = e.d.SoftDelete(ctx, id)
	}
	require.NoError(t, err, "bring %q to %s", id, want)
	require.Equal(t, want, e.info(t, id).State, "state of %q", id)
}

func testClose(t *testing.T, e *env) {
	ctx := t.Context()
	require.NoError(t, e.d.Close())
	require.NoError(t, e.d.Close(), "second Close")
	id := newID("closed")
	_, err := e.d.Info(ctx, id)
	requireClass(t, err, hypervisor.ErrUnavailable, id, "Info after Close")
	_, err = e.d.List(ctx, hypervisor.ListOptions{})
	requireClass(t, err, hypervisor.ErrUnavailable, "", "List after Close")
	spec := e.spec("closed") // no cleanup: the driver is closed
	_, err = e.d.Spawn(ctx, spec)
	requireClass(t, err, hypervisor.ErrUnavailable, spec.ID, "Spawn after Close")
}

// WithoutPauseEchoes returns one instance's events (in stream order)
// without the pause/unpause pairs an engine repeats. Docker's event
// monitor reports a pause it learns of late: when an unpause overtakes
// the engine's own notice of the pause before it, the engine logs that
// pause again after the unpause, and then the unpause again, so a
// stream that passes on the engine's events shows paused, unpaused,
// paused, unpaused for one pause and one unpause (see
// hypervisor/docker's EventsSince). Only a paused that directly follows
// an unpaused and is directly followed by an unpaused is taken for such
// a repeat: use it where the test itself pauses at most once between
// other transitions.
func WithoutPauseEchoes(evs []hypervisor.Event) []hypervisor.Event {
	out := make([]hypervisor.Event, 0, len(evs))
	for i := 0; i < len(evs); i++ {
		n := len(out)
		if evs[i].Type == hypervisor.EventPaused && n > 0 && out[n-1].Type == hypervisor.EventUnpaused &&
			i+1 < len(evs) && evs[i+1].Type == hypervisor.EventUnpaused {
			i++
			continue
		}
		out = append(out, evs[i])
	}
	return out
}
