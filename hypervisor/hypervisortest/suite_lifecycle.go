package hypervisortest

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dockervisor/dockervisor/hypervisor"
	"github.com/dockervisor/dockervisor/network"
)

func testSpawn(t *testing.T, e *env) {
	ctx := t.Context()
	spec := e.spec("spawn")
	spec.Name = "vm-" + randomHex(4)
	spec.VCPUs = 2
	spec.Labels["color"] = "blue"
	spec.Metadata = map[string]string{"flavor": "m1.tiny", "owner": "suite"}

	inst := e.spawn(t, spec)
	assert.Equal(t, spec.ID, inst.ID)
	assert.Equal(t, spec.Name, inst.Name)
	assert.Equal(t, spec.Image, inst.Image)
	assert.Equal(t, hypervisor.StateRunning, inst.State)
	assert.NotEmpty(t, inst.BackendID)
	assert.False(t, inst.CreatedAt.IsZero(), "CreatedAt")

	info := e.info(t, spec.ID)
	assert.Equal(t, spec.ID, info.ID)
	assert.Equal(t, spec.Name, info.Name)
	assert.Equal(t, spec.Image, info.Image)
	assert.Equal(t, inst.BackendID, info.BackendID)
	assert.Equal(t, hypervisor.StateRunning, info.State)
	assert.Positive(t, info.PID)
	assert.Equal(t, 2, info.VCPUs)
	assert.Equal(t, int64(64), info.MemoryMB)
	assert.Equal(t, uint64(64<<20), info.MaxMemoryBytes)
	assert.LessOrEqual(t, info.MemoryBytes, info.MaxMemoryBytes)
	assert.GreaterOrEqual(t, info.CPUTime, time.Duration(0))
	assert.True(t, info.CreatedAt.Equal(inst.CreatedAt), "CreatedAt: Spawn %s, Info %s", inst.CreatedAt, info.CreatedAt)
	assert.False(t, info.StartedAt.IsZero(), "StartedAt")
	assert.False(t, info.StartedAt.Before(info.CreatedAt), "StartedAt %s before CreatedAt %s", info.StartedAt, info.CreatedAt)
	assert.Equal(t, spec.Labels, info.Labels)
	assert.Equal(t, spec.Metadata, info.Metadata)

	list, err := e.d.List(ctx, hypervisor.ListOptions{Labels: map[string]string{labelRun: e.run}})
	require.NoError(t, err)
	require.Len(t, list, 1, "List by run label")
	got := list[0]
	assert.Equal(t, spec.ID, got.ID)
	assert.Equal(t, spec.Name, got.Name)
	assert.Equal(t, inst.BackendID, got.BackendID)
	assert.Equal(t, hypervisor.StateRunning, got.State)
	assert.Equal(t, spec.Labels, got.Labels)
	assert.Equal(t, spec.Metadata, got.Metadata)

	assert.Contains(t, e.listIDs(t, hypervisor.ListOptions{}), spec.ID, "List all")
	assert.Contains(t, e.listIDs(t, hypervisor.ListOptions{
		States: []hypervisor.State{hypervisor.StateShutdown, hypervisor.StateRunning},
		Labels: map[string]string{labelRun: e.run, "color": "blue"},
	}), spec.ID, "List running with labels")
	assert.NotContains(t, e.listIDs(t, hypervisor.ListOptions{
		States: []hypervisor.State{hypervisor.StatePaused, hypervisor.StateShutdown},
	}), spec.ID, "List paused or shutdown")
	assert.NotContains(t, e.listIDs(t, hypervisor.ListOptions{
		Labels: map[string]string{labelRun: e.run, "color": "red"},
	}), spec.ID, "List with a label value that differs")
	assert.NotContains(t, e.listIDs(t, hypervisor.ListOptions{
		Labels: map[string]string{labelRun: e.run, "missing-label": "blue"},
	}), spec.ID, "List with a label the instance lacks")

	// The filters follow the state.
	require.NoError(t, e.d.Pause(ctx, spec.ID))
	assert.Equal(t, []string{spec.ID}, e.listIDs(t, hypervisor.ListOptions{
		States: []hypervisor.State{hypervisor.StatePaused},
		Labels: map[string]string{labelRun: e.run},
	}), "List paused after Pause")
	assert.Empty(t, e.listIDs(t, hypervisor.ListOptions{
		States: []hypervisor.State{hypervisor.StateRunning},
		Labels: map[string]string{labelRun: e.run},
	}), "List running after Pause")
}

func testSpawnDuplicate(t *testing.T, e *env) {
	ctx := t.Context()
	spec := e.spec("dup")
	spec.Labels["which"] = "first"
	first := e.spawn(t, spec)
	before := e.info(t, spec.ID)

	again := e.spec("dup")
	again.ID = spec.ID
	again.Name = "other-name"
	again.VCPUs = 2
	again.Labels["which"] = "second"
	_, err := e.d.Spawn(ctx, again)
	requireClass(t, err, hypervisor.ErrAlreadyExists, spec.ID, "second Spawn")
	_, err = e.d.Spawn(ctx, spec)
	requireClass(t, err, hypervisor.ErrAlreadyExists, spec.ID, "Spawn of the same spec")

	after := e.info(t, spec.ID)
	assert.Equal(t, hypervisor.StateRunning, after.State)
	assert.Equal(t, first.BackendID, after.BackendID)
	assert.True(t, after.CreatedAt.Equal(first.CreatedAt), "CreatedAt changed: %s, now %s", first.CreatedAt, after.CreatedAt)
	assert.True(t, after.StartedAt.Equal(before.StartedAt), "StartedAt changed: %s, now %s", before.StartedAt, after.StartedAt)
	assert.Equal(t, before.PID, after.PID, "PID")
	assert.Equal(t, spec.Hostname(), after.Name)
	assert.Equal(t, 1, after.VCPUs)
	assert.Equal(t, spec.Labels, after.Labels)
}

func testSpawnInvalid(t *testing.T, e *env) {
	missing := e.h.MissingImage
	if missing == "" {
		missing = "hypervisortest-missing-" + randomHex(8)
	}
	tests := []struct {
		name  string
		edit  func(s *hypervisor.InstanceSpec)
		class error
	}{
		{"EmptyID", func(s *hypervisor.InstanceSpec) { s.ID = "" }, hypervisor.ErrInvalidArgument},
		{"IDWithSlash", func(s *hypervisor.InstanceSpec) { s.ID = "hvt/" + randomHex(4) }, hypervisor.ErrInvalidArgument},
		{"IDTooLong", func(s *hypervisor.InstanceSpec) {
			s.ID = "hvt-" + randomHex(4) + strings.Repeat("x", hypervisor.MaxIDLength)
		}, hypervisor.ErrInvalidArgument},
		{"BadHostname", func(s *hypervisor.InstanceSpec) { s.Name = "bad_name!" }, hypervisor.ErrInvalidArgument},
		{"HostnameLabelTooLong", func(s *hypervisor.InstanceSpec) { s.Name = strings.Repeat("a", 64) }, hypervisor.ErrInvalidArgument},
		{"NegativeVCPUs", func(s *hypervisor.InstanceSpec) { s.VCPUs = -1 }, hypervisor.ErrInvalidArgument},
		{"TooManyVCPUs", func(s *hypervisor.InstanceSpec) { s.VCPUs = hypervisor.MaxVCPUs + 1 }, hypervisor.ErrInvalidArgument},
		{"NegativeMemory", func(s *hypervisor.InstanceSpec) { s.MemoryMB = -1 }, hypervisor.ErrInvalidArgument},
		{"TinyMemory", func(s *hypervisor.InstanceSpec) { s.MemoryMB = 1 }, hypervisor.ErrInvalidArgument},
		{"EmptyImage", func(s *hypervisor.InstanceSpec) { s.Image = "" }, hypervisor.ErrInvalidArgument},
		{"MissingImage", func(s *hypervisor.InstanceSpec) { s.Image = missing }, hypervisor.ErrImageNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			spec := e.spec("bad")
			tt.edit(&spec)
			idOK := hypervisor.ValidateID(spec.ID) == nil
			if idOK {
				e.cleanupDestroy(t, spec.ID) // in case a broken driver made it
			}
			_, err := e.d.Spawn(ctx, spec)
			requireClass(t, err, tt.class, spec.ID, "Spawn")

			if idOK {
				_, err = e.d.Info(ctx, spec.ID)
				requireClass(t, err, hypervisor.ErrNotFound, spec.ID, "Info after a failed Spawn")
			} else {
				_, err = e.d.Info(ctx, spec.ID)
				requireClass(t, err, hypervisor.ErrInvalidArgument, spec.ID, "Info with the bad ID")
			}
			assert.NotContains(t, e.listIDs(t, hypervisor.ListOptions{}), spec.ID, "List after a failed Spawn")
			assert.Empty(t, e.listIDs(t, hypervisor.ListOptions{Labels: map[string]string{labelRun: e.run, "spawn-invalid": tt.name}}))
		})
	}
}

// outcome is one cell of the state table.
type outcome struct {
	kind int              // one of valid, noop, invalid, keep
	to   hypervisor.State // for valid
}

const (
	cellValid   = iota // a transition to outcome.to
	cellNoop           // nil, nothing changes
	cellInvalid        // ErrInvalidState, nothing changes
	cellKeep           // valid, the state does not change (Snapshot)
)

func to(s hypervisor.State) outcome { return outcome{kind: cellValid, to: s} }

var (
	noop    = outcome{kind: cellNoop}
	invalid = outcome{kind: cellInvalid}
	keep    = outcome{kind: cellKeep}
)

const (
	stR = hypervisor.StateRunning
	stP = hypervisor.StatePaused
	stS = hypervisor.StateShutdown
	stC = hypervisor.StateCrashed
	stD = hypervisor.StateSoftDeleted
)

// stateOp is one operation of the state table.
type stateOp struct {
	name   string
	do     func(ctx context.Context, d hypervisor.Driver, id string) error
	starts bool // a valid call starts a new process
	// newBackend: a valid call replaces the backend object (Rebuild).
	newBackend bool
	cells      map[hypervisor.State]outcome
}

// stateOps is the state table of package hypervisor, written out anew so
// that a driver is checked against the documentation, not against itself.
var stateOps = []stateOp{
	{
		name: "PowerOff",
		do: func(ctx context.Context, d hypervisor.Driver, id string) error {
			return d.PowerOff(ctx, id, hypervisor.StopOptions{Timeout: stopTimeout})
		},
		cells: map[hypervisor.State]outcome{stR: to(stS), stP: to(stS), stS: noop, stC: noop, stD: invalid},
	},
	{
		name:   "PowerOn",
		do:     func(ctx context.Context, d hypervisor.Driver, id string) error { return d.PowerOn(ctx, id) },
		starts: true,
		cells:  map[hypervisor.State]outcome{stR: noop, stP: invalid, stS: to(stR), stC: to(stR), stD: invalid},
	},
	{
		name:  "Pause",
		do:    func(ctx context.Context, d hypervisor.Driver, id string) error { return d.Pause(ctx, id) },
		cells: map[hypervisor.State]outcome{stR: to(stP), stP: noop, stS: invalid, stC: invalid, stD: invalid},
	},
	{
		name:  "Unpause",
		do:    func(ctx context.Context, d hypervisor.Driver, id string) error { return d.Unpause(ctx, id) },
		cells: map[hypervisor.State]outcome{stR: noop, stP: to(stR), stS: invalid, stC: invalid, stD: invalid},
	},
	{
		name: "RebootSoft",
		do: func(ctx context.Context, d hypervisor.Driver, id string) error {
			return d.Reboot(ctx, id, hypervisor.RebootOptions{Timeout: stopTimeout})
		},
		starts: true,
		cells:  map[hypervisor.State]outcome{stR: to(stR), stP: invalid, stS: invalid, stC: invalid, stD: invalid},
	},
	{
		name: "RebootHard",
		do: func(ctx context.Context, d hypervisor.Driver, id string) error {
			return d.Reboot(ctx, id, hypervisor.RebootOptions{Hard: true})
		},
		starts: true,
		cells:  map[hypervisor.State]outcome{stR: to(stR), stP: to(stR), stS: to(stR), stC: to(stR), stD: invalid},
	},
	{
		name:  "SoftDelete",
		do:    func(ctx context.Context, d hypervisor.Driver, id string) error { return d.SoftDelete(ctx, id) },
		cells: map[hypervisor.State]outcome{stR: to(stD), stP: to(stD), stS: to(stD), stC: to(stD), stD: noop},
	},
	{
		name:   "Restore",
		do:     func(ctx context.Context, d hypervisor.Driver, id string) error { return d.Restore(ctx, id) },
		starts: true,
		cells:  map[hypervisor.State]outcome{stR: invalid, stP: invalid, stS: invalid, stC: invalid, stD: to(stR)},
	},
	{
		name: "Snapshot",
		do: func(ctx context.Context, d hypervisor.Driver, id string) error {
			_, err := d.Snapshot(ctx, id, hypervisor.SnapshotRequest{Name: "hypervisortest-" + id})
			return err
		},
		cells: map[hypervisor.State]outcome{stR: keep, stP: keep, stS: keep, stC: keep, stD: invalid},
	},
	{
		name: "Rebuild",
		do: func(ctx context.Context, d hypervisor.Driver, id string) error {
			info, err := d.Info(ctx, id)
			if err != nil {
				return err
			}
			return d.Rebuild(ctx, id, info.Image)
		},
		starts:     true,
		newBackend: true,
		cells:      map[hypervisor.State]outcome{stR: to(stR), stP: invalid, stS: to(stS), stC: to(stS), stD: invalid},
	},
}

// supported reports whether the driver claims to support op.
func (e *env) supported(op string) bool {
	switch op {
	case "Pause", "Unpause":
		return e.caps.Pause
	case "RebootSoft", "RebootHard":
		return e.caps.Reboot
	case "SoftDelete", "Restore":
		return e.caps.SoftDelete
	case "Snapshot":
		return e.caps.Snapshot
	}
	return true
}

func testStateTable(t *testing.T, e *env) {
	sources := []hypervisor.State{stR, stP, stS, stC, stD}
	for _, src := range sources {
		t.Run(src.String(), func(t *testing.T) {
			t.Parallel()
			if src == stC && e.h.Crash == nil {
				t.Skip("Harness.Crash is nil: the crashed state cannot be produced")
			}
			if src == stP && !e.caps.Pause {
				t.Skip("driver cannot pause")
			}
			if src == stD && !e.caps.SoftDelete {
				t.Skip("driver cannot soft-delete")
			}
			spec := e.spec("st-" + src.String()[:4])
			e.spawn(t, spec)
			id := spec.ID
			for _, op := range stateOps {
				want, ok := op.cells[src]
				require.True(t, ok, "state table has no cell for %s in %s", op.name, src)
				msg := op.name + " in state " + src.String()
				if !e.supported(op.name) {
					e.establish(t, id, src)
					err := op.do(t.Context(), e.d, id)
					requireUnsupportedOr(t, false, err, hypervisor.ErrNotSupported, id, msg)
					continue
				}
				e.establish(t, id, src)
				before := e.info(t, id)
				err := op.do(t.Context(), e.d, id)
				switch want.kind {
				case cellInvalid:
					requireStateError(t, err, id, src, msg)
				default:
					require.NoError(t, err, msg)
				}
				after := e.info(t, id)
				checkPID(t, after, msg)
				switch want.kind {
				case cellValid:
					assert.Equal(t, want.to, after.State, msg)
					if op.starts {
						assert.True(t, after.StartedAt.After(before.StartedAt),
							"%s: StartedAt %s is not after %s: no new run", msg, after.StartedAt, before.StartedAt)
					} else if hasProcess(after.State) {
						assert.Equal(t, before.PID, after.PID, "%s: PID", msg)
						assert.True(t, after.StartedAt.Equal(before.StartedAt), "%s: StartedAt changed", msg)
					}
				default: // noop, invalid, keep: unchanged
					assert.Equal(t, src, after.State, msg)
					assert.Equal(t, before.PID, after.PID, "%s: PID", msg)
					assert.True(t, after.StartedAt.Equal(before.StartedAt), "%s: StartedAt changed from %s to %s", msg, before.StartedAt, after.StartedAt)
				}
				if !op.newBackend || want.kind != cellValid {
					assert.Equal(t, before.BackendID, after.BackendID, "%s: BackendID", msg)
				}
				assert.Equal(t, spec.Labels, after.Labels, "%s: labels", msg)
				assert.Equal(t, int64(64), after.MemoryMB, "%s: memory", msg)
			}
		})
	}
}

func testDestroy(t *testing.T, e *env) {
	ctx := t.Context()
	spec := e.spec("destroy")
	spec.VCPUs = 0
	spec.MemoryMB = 0
	e.spawn(t, spec)

	info := e.info(t, spec.ID)
	assert.Equal(t, spec.ID, info.Name, "Name defaults to the ID")
	assert.Equal(t, 1, info.VCPUs, "zero vCPUs means 1")
	assert.Zero(t, info.MemoryMB)
	assert.Positive(t, info.MaxMemoryBytes, "MaxMemoryBytes of an unlimited instance is the host's memory")

	require.NoError(t, e.d.Destroy(ctx, spec.ID))
	_, err := e.d.Info(ctx, spec.ID)
	requireClass(t, err, hypervisor.ErrNotFound, spec.ID, "Info after Destroy")
	assert.NotContains(t, e.listIDs(t, hypervisor.ListOptions{}), spec.ID, "List after Destroy")
	require.NoError(t, e.d.Destroy(ctx, spec.ID), "second Destroy")
	require.NoError(t, e.d.Destroy(ctx, newID("never")), "Destroy of an ID never used")

	// The ID can be used again.
	again := e.spec("destroy")
	again.ID = spec.ID
	inst := e.spawn(t, again)
	assert.NotEqual(t, info.BackendID, inst.BackendID, "a new instance")

	// Destroy works in every state the instance can be in.
	require.NoError(t, e.d.Pause(ctx, spec.ID))
	require.NoError(t, e.d.Destroy(ctx, spec.ID), "Destroy of a paused instance")
	_, err = e.d.Info(ctx, spec.ID)
	requireClass(t, err, hypervisor.ErrNotFound, spec.ID, "Info after Destroy")
}

// idOps calls every per-instance method with an ID.
func (e *env) idOps() []struct {
	name      string
	supported bool
	do        func(ctx context.Context, id string) error
} {
	vif := network.VIF{ID: "hvt-port", Type: network.VIFTypeOVS, Bridge: "br-int"}
	return []struct {
		name      string
		supported bool
		do        func(ctx context.Context, id string) error
	}{
		{"Info", true, func(ctx context.Context, id string) error { _, err := e.d.Info(ctx, id); return err }},
		{"PowerOff", true, func(ctx context.Context, id string) error {
			return e.d.PowerOff(ctx, id, hypervisor.StopOptions{})
		}},
		{"PowerOn", true, func(ctx context.Context, id string) error { return e.d.PowerOn(ctx, id) }},
		{"Pause", e.caps.Pause, func(ctx context.Context, id string) error { return e.d.Pause(ctx, id) }},
		{"Unpause", e.caps.Pause, func(ctx context.Context, id string) error { return e.d.Unpause(ctx, id) }},
		{"Reboot", e.caps.Reboot, func(ctx context.Context, id string) error {
			return e.d.Reboot(ctx, id, hypervisor.RebootOptions{Hard: true})
		}},
		{"SoftDelete", e.caps.SoftDelete, func(ctx context.Context, id string) error { return e.d.SoftDelete(ctx, id) }},
		{"Restore", e.caps.SoftDelete, func(ctx context.Context, id string) error { return e.d.Restore(ctx, id) }},
		{"ConsoleOutput", true, func(ctx context.Context, id string) error {
			_, err := e.d.ConsoleOutput(ctx, id, hypervisor.ConsoleOptions{})
			return err
		}},
		{"Snapshot", e.caps.Snapshot, func(ctx context.Context, id string) error {
			_, err := e.d.Snapshot(ctx, id, hypervisor.SnapshotRequest{Name: "hvt"})
			return err
		}},
		{"Rebuild", true, func(ctx context.Context, id string) error { return e.d.Rebuild(ctx, id, e.h.Image) }},
		{"InstanceStats", e.caps.InstanceStats, func(ctx context.Context, id string) error {
			_, err := e.d.InstanceStats(ctx, id)
			return err
		}},
		{"PlugVIFs", e.caps.VIFs, func(ctx context.Context, id string) error {
			return e.d.PlugVIFs(ctx, id, []network.VIF{vif})
		}},
		{"UnplugVIFs", e.caps.VIFs, func(ctx context.Context, id string) error {
			return e.d.UnplugVIFs(ctx, id, []network.VIF{vif})
		}},
		{"AttachInterface", e.caps.HotplugVIF, func(ctx context.Context, id string) error {
			return e.d.AttachInterface(ctx, id, vif)
		}},
		{"DetachInterface", e.caps.HotplugVIF, func(ctx context.Context, id string) error {
			return e.d.DetachInterface(ctx, id, vif)
		}},
	}
}

func testMissingAndInvalidID(t *testing.T, e *env) {
	ctx := t.Context()
	missing := newID("missing")
	for _, op := range e.idOps() {
		err := op.do(ctx, missing)
		requireUnsupportedOr(t, op.supported, err, hypervisor.ErrNotFound, missing, "%s of a missing instance", op.name)
	}
	bad := []string{"", "bad/id", "-leading-dash", "sp ace", strings.Repeat("a", hypervisor.MaxIDLength+1)}
	for _, id := range bad {
		for _, op := range e.idOps() {
			err := op.do(ctx, id)
			requireUnsupportedOr(t, op.supported, err, hypervisor.ErrInvalidArgument, id, "%s with ID %q", op.name, id)
		}
		err := e.d.Destroy(ctx, id)
		requireClass(t, err, hypervisor.ErrInvalidArgument, id, "Destroy with ID %q", id)
	}
}
