package hypervisortest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dockervisor/dockervisor/hypervisor"
	"github.com/dockervisor/dockervisor/image"
)

// deleteSnapshotAtEnd deletes the store image id when t ends, if the
// harness gave the suite the snapshot store.
func (e *env) deleteSnapshotAtEnd(t *testing.T, id string) {
	if e.h.Snapshots == nil || id == "" {
		return
	}
	t.Cleanup(func() {
		assert.NoError(t, e.h.Snapshots.Delete(context.WithoutCancel(t.Context()), id), "delete snapshot %s", id)
	})
}

func testSnapshot(t *testing.T, e *env) {
	spec := e.spec("snap")
	spec.Metadata = map[string]string{"role": "snapshotted"}
	e.spawn(t, spec)
	id := spec.ID
	ctx := t.Context()
	before := e.info(t, id)

	var evs <-chan hypervisor.Event
	evCtx, stopEvents := context.WithCancel(ctx)
	defer stopEvents()
	if e.caps.Snapshot && e.caps.Events {
		evs, _ = e.d.Events(evCtx)
	}
	// Any display name: capitals, spaces, unicode.
	name := "Hypervisortest Snapshot – Ünïcode 快照 " + e.run
	meta, err := e.d.Snapshot(ctx, id, hypervisor.SnapshotRequest{
		Name:       name,
		Properties: map[string]string{"suite": "hypervisortest"},
	})
	if !e.caps.Snapshot {
		requireUnsupportedOr(t, false, err, hypervisor.ErrNotSupported, id, "Snapshot")
		return
	}
	require.NoError(t, err)
	e.deleteSnapshotAtEnd(t, meta.ID)
	assert.NotEmpty(t, meta.ID)
	assert.Equal(t, name, meta.Name)
	assert.Positive(t, meta.Size)
	assert.Len(t, meta.SHA256, 64, "sha256 recorded")
	assert.Equal(t, image.ContainerFormatDocker, meta.ContainerFormat)
	assert.Equal(t, image.DiskFormatRaw, meta.DiskFormat)
	assert.Equal(t, "hypervisortest", meta.Properties["suite"])
	assert.Equal(t, "snapshot", meta.Properties["image_type"])
	assert.Equal(t, id, meta.Properties["instance_uuid"])
	assert.Equal(t, spec.Image, meta.Properties["base_image_ref"])
	after := e.info(t, id)
	assert.Equal(t, stR, after.State, "Snapshot does not change the state")
	assert.Equal(t, before.PID, after.PID)

	if evs != nil {
		// The pause and unpause around the commit (if the driver pauses)
		// are marked as the snapshot's. A user's Pause/Unpause after it
		// bounds the wait and must not be marked.
		userFrom := time.Now()
		require.NoError(t, e.d.Pause(ctx, id))
		require.NoError(t, e.d.Unpause(ctx, id))
		var snap, user []hypervisor.Event
		timeout := time.After(e.stateTimeout)
	wait:
		for {
			select {
			case ev := <-evs:
				if ev.ID != id || (ev.Type != hypervisor.EventPaused && ev.Type != hypervisor.EventUnpaused) {
					continue
				}
				if ev.Time.Before(userFrom) {
					snap = append(snap, ev)
					continue
				}
				user = append(user, ev)
				if ev.Type == hypervisor.EventUnpaused {
					break wait
				}
			case <-timeout:
				require.Failf(t, "missing events", "pause events of %s: %+v then %+v", id, snap, user)
			}
		}
		// The engine may repeat the snapshot's pause and unpause after
		// the unpause (see WithoutPauseEchoes): the repeat is no pause.
		snap = WithoutPauseEchoes(snap)
		for _, ev := range snap {
			assert.Equal(t, hypervisor.CauseSnapshot, ev.Cause, "pause event during the snapshot: %+v", ev)
		}
		assert.Contains(t, []int{0, 2}, len(snap), "a snapshot pauses and unpauses once, or not at all: %+v", snap)
		for _, ev := range user {
			assert.Empty(t, ev.Cause, "a user's pause is not the snapshot's: %+v", ev)
		}
	}

	if e.h.Snapshots != nil {
		list, err := e.h.Snapshots.List(ctx, image.ListOptions{Properties: map[string]string{"instance_uuid": id}})
		require.NoError(t, err)
		require.Len(t, list, 1, "the instance's snapshots, by instance_uuid")
		assert.Equal(t, meta.ID, list[0].ID)
	}

	// Bad input: a property the snapshot sets itself.
	_, err = e.d.Snapshot(ctx, id, hypervisor.SnapshotRequest{Properties: map[string]string{"instance_uuid": "other"}})
	requireClass(t, err, hypervisor.ErrInvalidArgument, id, "Snapshot with a reserved property")
	after = e.info(t, id)
	assert.Equal(t, stR, after.State, "a failed snapshot leaves the instance running")
	assert.Equal(t, before.PID, after.PID)

	// A stopped instance can be snapshotted too, and stays stopped.
	require.NoError(t, e.d.PowerOff(ctx, id, hypervisor.StopOptions{Timeout: stopTimeout}))
	stopped, err := e.d.Snapshot(ctx, id, hypervisor.SnapshotRequest{})
	require.NoError(t, err)
	e.deleteSnapshotAtEnd(t, stopped.ID)
	assert.NotEqual(t, meta.ID, stopped.ID)
	assert.Equal(t, stS, e.info(t, id).State)

	if !e.h.BootFromSnapshot {
		return
	}
	// Boot from the snapshot.
	boot := e.spec("from-snap")
	boot.Image = meta.ID
	inst := e.spawn(t, boot)
	assert.Equal(t, meta.ID, inst.Image)
	assert.Equal(t, stR, e.info(t, boot.ID).State)

	// Revert the first instance to its snapshot.
	require.NoError(t, e.d.PowerOn(ctx, id))
	require.NoError(t, e.d.Rebuild(ctx, id, meta.ID))
	reverted := e.info(t, id)
	assert.Equal(t, meta.ID, reverted.Image)
	assert.Equal(t, stR, reverted.State)
	assert.Equal(t, spec.Metadata, reverted.Metadata)
}

func testRebuild(t *testing.T, e *env) {
	ctx := t.Context()
	spec := e.spec("rebuild")
	spec.Name = "rebuilt-host"
	spec.MemoryMB = 96
	spec.VCPUs = 2
	spec.Metadata = map[string]string{"k": "v"}
	e.spawn(t, spec)
	id := spec.ID
	before := e.info(t, id)

	require.NoError(t, e.d.Rebuild(ctx, id, e.h.Image))
	after := e.info(t, id)
	assert.Equal(t, stR, after.State, "a running instance runs after a rebuild")
	assert.Equal(t, id, after.ID)
	assert.Equal(t, "rebuilt-host", after.Name)
	assert.Equal(t, e.h.Image, after.Image)
	assert.Equal(t, 2, after.VCPUs)
	assert.Equal(t, int64(96), after.MemoryMB)
	assert.Equal(t, spec.Labels, after.Labels)
	assert.Equal(t, spec.Metadata, after.Metadata)
	assert.True(t, after.StartedAt.After(before.StartedAt), "a new run")
	assert.Equal(t, []string{id}, e.listIDs(t, hypervisor.ListOptions{Labels: map[string]string{labelRun: e.run, labelSuite: "1"}}),
		"one instance, the same ID")

	// A missing image changes nothing.
	missing := e.h.MissingImage
	if missing == "" {
		missing = "hypervisortest/missing-" + randomHex(4) + ":1"
	}
	err := e.d.Rebuild(ctx, id, missing)
	requireClass(t, err, hypervisor.ErrImageNotFound, id, "Rebuild from a missing image")
	kept := e.info(t, id)
	assert.Equal(t, stR, kept.State)
	assert.Equal(t, after.PID, kept.PID, "a failed rebuild leaves the instance running as it was")
	assert.Equal(t, after.BackendID, kept.BackendID)

	err = e.d.Rebuild(ctx, id, " ")
	requireClass(t, err, hypervisor.ErrInvalidArgument, id, "Rebuild without an image")

	if e.caps.Pause {
		require.NoError(t, e.d.Pause(ctx, id))
		err = e.d.Rebuild(ctx, id, e.h.Image)
		requireStateError(t, err, id, stP, "Rebuild of a paused instance")
		require.NoError(t, e.d.Unpause(ctx, id))
	}
	if errors.Is(err, hypervisor.ErrNotSupported) {
		t.Fatalf("Rebuild is part of every driver: %v", err)
	}
}
