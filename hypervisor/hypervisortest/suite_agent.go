package hypervisortest

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dockervisor/dockervisor/hypervisor"
)

// AgentHarness is what [TestAgentDriver] needs to exercise one backend's
// [hypervisor.AgentDriver] roles. Harness.Driver must implement
// hypervisor.AgentDriver.
type AgentHarness struct {
	Harness

	// MakeHalfSpawned, if not nil, leaves a half-finished spawn of spec
	// behind, as a spawn interrupted by a crash of the agent would: the
	// backend object exists, the spawn never finished, no call works on
	// it. Nil skips the half-spawn checks.
	MakeHalfSpawned func(t *testing.T, spec hypervisor.InstanceSpec)
	// MakeOrphanRecord, if not nil, leaves a state record for id without
	// an instance; OrphanRecordExists tells whether it is still there.
	MakeOrphanRecord   func(t *testing.T, id string)
	OrphanRecordExists func(t *testing.T, id string) bool

	// InterruptSnapshot, if not nil, leaves running instance id as a
	// snapshot whose agent died between its pause and its unpause leaves
	// it: paused, the backend's record saying the snapshot paused it. Nil
	// skips the interrupted-operation checks.
	InterruptSnapshot func(t *testing.T, id string)

	// RestartEngine, if not nil, restarts the engine under the driver and
	// returns once it answers again. The suite runs the engine-restart
	// checks serially, after the others.
	RestartEngine func(t *testing.T)

	// MemoryInUseMB is the memory (MiB, at least 8) that an instance
	// running MemoryCommand uses once it has started; MemoryCommand nil
	// means Command. Zero skips the resize-below-usage check.
	MemoryInUseMB int
	MemoryCommand []string

	// OOMKill, if not nil, makes running instance id be killed by the OOM
	// killer.
	OOMKill func(t *testing.T, id string)

	// StoreImage, if not empty, is a store image ID of the driver's image
	// store that only this harness uses (the cache checks remove it from
	// the cache). Empty skips the image cache checks.
	StoreImage string

	// EventBuffer is the driver's slow-consumer bound: how many events it
	// queues for a subscriber that does not read. Zero skips the
	// slow-consumer check.
	EventBuffer int

	// Reopen, if not nil, returns a new driver on the same persistent
	// state, as after an agent restart (for the node UUID).
	Reopen func(t *testing.T) hypervisor.AgentDriver
}

// TestAgentDriver runs the conformance suite of the
// [hypervisor.AgentDriver] roles against the drivers newHarness returns,
// one fresh harness per subtest: create-only spawn, reconcile (with every
// policy, idempotency, and spawns running during it), resume, live resize
// and its faults, event reasons, replay and the slow-consumer rule, the
// image cache, bulk statistics and host facts. The engine-restart checks
// run last and serially.
func TestAgentDriver(t *testing.T, newHarness func(t *testing.T) AgentHarness) {
	parallel := []struct {
		name string
		fn   func(t *testing.T, e *agentEnv)
	}{
		{"CreateOnly", testCreateOnly},
		{"Resize", testResize},
		{"ResizeFaults", testResizeFaults},
		{"Reconcile", testReconcile},
		{"ReconcileDuringSpawns", testReconcileDuringSpawns},
		{"InterruptedSnapshot", testInterruptedSnapshot},
		{"Resume", testResume},
		{"EventReasons", testEventReasons},
		{"EventReplay", testEventReplay},
		{"SlowConsumer", testSlowConsumer},
		{"ImageCache", testImageCache},
		{"BulkStats", testBulkStats},
		{"HostFacts", testHostFacts},
	}
	t.Run("group", func(t *testing.T) {
		for _, tt := range parallel {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				tt.fn(t, newAgentEnv(t, newHarness))
			})
		}
	})
	t.Run("EngineRestart", func(t *testing.T) { testEngineRestart(t, newAgentEnv(t, newHarness)) })
	t.Run("ReconcileDuringEngineRestart", func(t *testing.T) { testReconcileDuringRestart(t, newAgentEnv(t, newHarness)) })
}

type agentEnv struct {
	*env
	ah AgentHarness
	a  hypervisor.AgentDriver
}

func newAgentEnv(t *testing.T, newHarness func(t *testing.T) AgentHarness) *agentEnv {
	t.Helper()
	ah := newHarness(t)
	e := newEnv(t, func(*testing.T) Harness { return ah.Harness })
	a, ok := ah.Driver.(hypervisor.AgentDriver)
	require.True(t, ok, "Harness.Driver %T does not implement hypervisor.AgentDriver", ah.Driver)
	return &agentEnv{env: e, ah: ah, a: a}
}

func testCreateOnly(t *testing.T, e *agentEnv) {
	ctx := t.Context()
	spec := e.spec("created")
	e.cleanupDestroy(t, spec.ID)
	inst, err := e.a.SpawnWithOptions(ctx, spec, hypervisor.SpawnOptions{CreateOnly: true})
	require.NoError(t, err)
	assert.Equal(t, hypervisor.StateCreated, inst.State)
	info := e.info(t, spec.ID)
	assert.Equal(t, hypervisor.StateCreated, info.State, "Info of a created instance")
	assert.Zero(t, info.PID)
	assert.Equal(t, spec.MemoryMB, info.MemoryMB)
	assert.Equal(t, []string{spec.ID}, e.listIDs(t, hypervisor.ListOptions{States: []hypervisor.State{hypervisor.StateCreated}, Labels: map[string]string{labelRun: e.run}}),
		"List filtered by created")
	list, err := e.d.List(ctx, hypervisor.ListOptions{Labels: map[string]string{labelRun: e.run}})
	require.NoError(t, err)
	require.Len(t, list, 1)
	assert.Equal(t, hypervisor.StateCreated, list[0].State)

	// A taken ID is refused, leaving the created instance alone.
	_, err = e.a.SpawnWithOptions(ctx, spec, hypervisor.SpawnOptions{CreateOnly: true})
	requireClass(t, err, hypervisor.ErrAlreadyExists, spec.ID)
	// No-ops and invalid operations of the state table.
	require.NoError(t, e.d.PowerOff(ctx, spec.ID, hypervisor.StopOptions{}), "PowerOff of created is a no-op")
	requireStateError(t, e.d.Pause(ctx, spec.ID), spec.ID, hypervisor.StateCreated)
	assert.Equal(t, hypervisor.StateCreated, e.info(t, spec.ID).State)

	require.NoError(t, e.d.PowerOn(ctx, spec.ID), "PowerOn of created")
	info = e.info(t, spec.ID)
	assert.Equal(t, hypervisor.StateRunning, info.State)
	assert.Positive(t, info.PID)

	// Created → soft-deleted → restored; created → hard reboot.
	for _, path := range []string{"soft-delete", "hard-reboot"} {
		s := e.spec("created-" + path)
		e.cleanupDestroy(t, s.ID)
		_, err := e.a.SpawnWithOptions(ctx, s, hypervisor.SpawnOptions{CreateOnly: true})
		require.NoError(t, err)
		if path == "soft-delete" {
			require.NoError(t, e.d.SoftDelete(ctx, s.ID))
			assert.Equal(t, hypervisor.StateSoftDeleted, e.info(t, s.ID).State)
			require.NoError(t, e.d.Restore(ctx, s.ID))
		} else {
			require.NoError(t, e.d.Reboot(ctx, s.ID, hypervisor.RebootOptions{Hard: true}))
		}
		assert.Equal(t, hypervisor.StateRunning, e.info(t, s.ID).State, path)
	}

	// Bad input fails as Spawn does.
	bad := e.spec("created-bad")
	bad.VCPUs = -1
	_, err = e.a.SpawnWithOptions(ctx, bad, hypervisor.SpawnOptions{CreateOnly: true})
	requireClass(t, err, hypervisor.ErrInvalidArgument, bad.ID)
	missing := e.spec("created-missing")
	missing.Image = e.missingImage()
	_, err = e.a.SpawnWithOptions(ctx, missing, hypervisor.SpawnOptions{CreateOnly: true})
	requireClass(t, err, hypervisor.ErrImageNotFound, missing.ID)
	_, err = e.d.Info(ctx, missing.ID)
	requireClass(t, err, hypervisor.ErrNotFound, missing.ID, "a failed create leaves nothing")
}

func (e *agentEnv) missingImage() string {
	if e.h.MissingImage != "" {
		return e.h.MissingImage
	}
	return "hvt-missing-" + randomHex(4)
}

// requireFlavor requires Info and List of id to show f.
func (e *agentEnv) requireFlavor(t *testing.T, id string, f hypervisor.Flavor, msg string) {
	t.Helper()
	info := e.info(t, id)
	assert.Equal(t, f.EffectiveVCPUs(), info.VCPUs, "Info vCPUs %s", msg)
	assert.Equal(t, f.MemoryMB, info.MemoryMB, "Info memory %s", msg)
	if f.MemoryMB > 0 {
		assert.Equal(t, uint64(f.MemoryMB)<<20, info.MaxMemoryBytes, "Info memory limit %s", msg)
	}
	list, err := e.d.List(t.Context(), hypervisor.ListOptions{Labels: map[string]string{labelRun: e.run}})
	require.NoError(t, err)
	for _, inst := range list {
		if inst.ID == id {
			assert.Equal(t, f.EffectiveVCPUs(), inst.VCPUs, "List vCPUs %s", msg)
			assert.Equal(t, f.MemoryMB, inst.MemoryMB, "List memory %s", msg)
			return
		}
	}
	t.Fatalf("List misses %s", id)
}

func testResize(t *testing.T, e *agentEnv) {
	ctx := t.Context()
	spec := e.spec("resize")
	e.spawn(t, spec)
	pid := e.info(t, spec.ID).PID
	hostBefore, err := e.d.HostResources(ctx)
	require.NoError(t, err)

	f := hypervisor.Flavor{VCPUs: 2, MemoryMB: 96}
	require.NoError(t, e.a.Resize(ctx, spec.ID, f), "Resize of a running instance")
	info := e.info(t, spec.ID)
	assert.Equal(t, hypervisor.StateRunning, info.State)
	assert.Equal(t, pid, info.PID, "a live resize does not restart the instance")
	e.requireFlavor(t, spec.ID, f, "after resize")
	host, err := e.d.HostResources(ctx)
	require.NoError(t, err)
	assert.Equal(t, hostBefore.VCPUsUsed+1, host.VCPUsUsed, "HostResources vCPUs used follow the resize")
	assert.Equal(t, hostBefore.MemoryClaimedMB+32, host.MemoryClaimedMB, "HostResources memory claimed follows the resize")
	require.NoError(t, e.a.Resize(ctx, spec.ID, f), "Resize to the current flavor")

	// The new limits hold across every later transition.
	steps := []struct {
		name string
		do   func() error
	}{
		{"power-off", func() error { return e.d.PowerOff(ctx, spec.ID, hypervisor.StopOptions{Timeout: stopTimeout}) }},
		{"power-on", func() error { return e.d.PowerOn(ctx, spec.ID) }},
		{"soft reboot", func() error {
			return e.d.Reboot(ctx, spec.ID, hypervisor.RebootOptions{Timeout: stopTimeout})
		}},
		{"hard reboot", func() error { return e.d.Reboot(ctx, spec.ID, hypervisor.RebootOptions{Hard: true}) }},
		{"pause", func() error { return e.d.Pause(ctx, spec.ID) }},
		{"unpause", func() error { return e.d.Unpause(ctx, spec.ID) }},
		{"soft-delete", func() error { return e.d.SoftDelete(ctx, spec.ID) }},
		{"restore", func() error { return e.d.Restore(ctx, spec.ID) }},
	}
	for _, s := range steps {
		require.NoError(t, s.do(), s.name)
		e.requireFlavor(t, spec.ID, f, "after "+s.name)
	}

	// A stopped instance is resized too, and starts with the new limits.
	require.NoError(t, e.d.PowerOff(ctx, spec.ID, hypervisor.StopOptions{Timeout: stopTimeout}))
	f2 := hypervisor.Flavor{VCPUs: 1, HardCPULimit: true, MemoryMB: 48}
	require.NoError(t, e.a.Resize(ctx, spec.ID, f2), "Resize of a stopped instance")
	assert.Equal(t, hypervisor.StateShutdown, e.info(t, spec.ID).State, "Resize does not start")
	e.requireFlavor(t, spec.ID, f2, "after a stopped resize")
	require.NoError(t, e.d.PowerOn(ctx, spec.ID))
	e.requireFlavor(t, spec.ID, f2, "after the start that follows")

	// A created instance too.
	c := e.spec("resize-created")
	e.cleanupDestroy(t, c.ID)
	_, err = e.a.SpawnWithOptions(ctx, c, hypervisor.SpawnOptions{CreateOnly: true})
	require.NoError(t, err)
	require.NoError(t, e.a.Resize(ctx, c.ID, f))
	require.NoError(t, e.d.PowerOn(ctx, c.ID))
	e.requireFlavor(t, c.ID, f, "created, resized, started")
}

func testResizeFaults(t *testing.T, e *agentEnv) {
	ctx := t.Context()
	missing := newID("resize-missing")
	requireClass(t, e.a.Resize(ctx, missing, hypervisor.Flavor{VCPUs: 1}), hypervisor.ErrNotFound, missing)
	requireClass(t, e.a.Resize(ctx, "../bad", hypervisor.Flavor{VCPUs: 1}), hypervisor.ErrInvalidArgument, "../bad")

	spec := e.spec("resize-faults")
	e.spawn(t, spec)
	orig := hypervisor.Flavor{VCPUs: spec.VCPUs, MemoryMB: spec.MemoryMB}
	for _, f := range []hypervisor.Flavor{
		{VCPUs: -1, MemoryMB: 64},
		{VCPUs: hypervisor.MaxVCPUs + 1, MemoryMB: 64},
		{VCPUs: 1, MemoryMB: -5},
		{VCPUs: 1, MemoryMB: 1},
		{VCPUs: 1, MemoryMB: hypervisor.MaxMemoryMB + 1},
		{VCPUs: 1, MemoryMB: 0}, // a limit cannot be removed live
	} {
		err := e.a.Resize(ctx, spec.ID, f)
		requireClass(t, err, hypervisor.ErrInvalidArgument, spec.ID, "Resize to %+v", f)
		e.requireFlavor(t, spec.ID, orig, "after a refused resize")
	}

	if e.ah.MemoryInUseMB > 0 {
		hog := e.spec("resize-hog")
		if e.ah.MemoryCommand != nil {
			hog.Command = e.ah.MemoryCommand
		}
		e.spawn(t, hog)
		ctxw, cancel := contextWithTimeout(t, e.stateTimeout)
		defer cancel()
		for {
			info, err := e.d.Info(ctxw, hog.ID)
			require.NoError(t, err, "waiting for the instance to use %d MiB", e.ah.MemoryInUseMB)
			if info.MemoryBytes >= uint64(e.ah.MemoryInUseMB)<<20 {
				break
			}
			sleepCtx(ctxw, 50)
		}
		small := int64(max(hypervisor.MinMemoryMB, e.ah.MemoryInUseMB/2))
		err := e.a.Resize(ctx, hog.ID, hypervisor.Flavor{VCPUs: 1, MemoryMB: small})
		requireClass(t, err, hypervisor.ErrInvalidArgument, hog.ID, "resize below usage")
		le, ok := errors.AsType[*hypervisor.LimitError](err)
		require.True(t, ok, "a resize below usage is a *LimitError: %v", err)
		assert.Equal(t, "memory", le.Resource)
		assert.Equal(t, small<<20, le.Want)
		assert.GreaterOrEqual(t, le.Have, int64(e.ah.MemoryInUseMB)<<20)
		e.requireFlavor(t, hog.ID, hypervisor.Flavor{VCPUs: 1, MemoryMB: hog.MemoryMB}, "after a resize below usage")
		assert.Equal(t, hypervisor.StateRunning, e.info(t, hog.ID).State)
	}

	require.NoError(t, e.d.SoftDelete(ctx, spec.ID))
	requireStateError(t, e.a.Resize(ctx, spec.ID, hypervisor.Flavor{VCPUs: 2, MemoryMB: 64}), spec.ID, hypervisor.StateSoftDeleted)
	require.NoError(t, e.d.Restore(ctx, spec.ID))
	e.requireFlavor(t, spec.ID, orig, "soft-deleted resize refused")
}
