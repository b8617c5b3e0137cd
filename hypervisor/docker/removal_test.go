package docker

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dockervisor/dockervisor/hypervisor"
	"github.com/dockervisor/dockervisor/snapshot"
)

// removingEngine is the engine while it finishes the forced removal of
// container cid that a dead agent asked for: the removal goes on in the
// background (for a while), inspect reports the container "removing",
// and another removal is refused as the engine refuses it ("removal …
// already in progress").
type removingEngine struct {
	APIClient
	cid  string
	once sync.Once
	done chan struct{}
}

func (e *removingEngine) begin() {
	e.once.Do(func() {
		go func() {
			defer close(e.done)
			time.Sleep(300 * time.Millisecond)
			_, _ = e.APIClient.ContainerRemove(context.Background(), e.cid, client.ContainerRemoveOptions{Force: true})
		}()
	})
}

func (e *removingEngine) removing() bool {
	select {
	case <-e.done:
		return false
	default:
		return true
	}
}

func (e *removingEngine) ContainerInspect(ctx context.Context, id string, o client.ContainerInspectOptions) (client.ContainerInspectResult, error) {
	res, err := e.APIClient.ContainerInspect(ctx, id, o)
	if err == nil && res.Container.ID == e.cid && e.removing() {
		res.Container.State.Status = container.StateRemoving
	}
	return res, err
}

func (e *removingEngine) ContainerRemove(ctx context.Context, id string, o client.ContainerRemoveOptions) (client.ContainerRemoveResult, error) {
	if e.removing() {
		return client.ContainerRemoveResult{}, fmt.Errorf("removal of container %s is already in progress: %w", id, cerrdefs.ErrConflict)
	}
	return e.APIClient.ContainerRemove(ctx, id, o)
}

func newRemovingEngine(e *env, id string) *removingEngine {
	e.t.Helper()
	r := &removingEngine{APIClient: e.cli, cid: e.inspect(id).ID, done: make(chan struct{})}
	r.begin()
	return r
}

// TestDestroyWaitsForARemovalInProgress: a Destroy while the engine
// finishes the forced removal a dead agent asked for waits for it and
// succeeds (no ErrInvalidState), and leaves nothing.
func TestDestroyWaitsForARemovalInProgress(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.spawn(e.spec("rm"))
	eng := newRemovingEngine(e, "rm")
	d, err := New(append(e.opts, WithAPIClient(eng))...)
	require.NoError(t, err)
	t.Cleanup(func() { d.Close() })

	require.NoError(t, d.Destroy(t.Context(), "rm"))
	assert.Zero(t, e.containersNamed(d.containerName("rm")))
	_, ok, err := d.state.instances.Load("rm")
	require.NoError(t, err)
	assert.False(t, ok, "no record left")
}

// TestResumeSkipsARemovalInProgress: Resume never starts a container the
// engine is removing (the engine would refuse), reports no failure, and
// Reconcile's remove policy then takes the record the dead agent's
// Destroy left.
func TestResumeSkipsARemovalInProgress(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.spawn(e.spec("rm"))
	// Stopped behind the driver's back: intended to run, so Resume would
	// start it.
	_, err := e.cli.ContainerKill(t.Context(), e.inspect("rm").ID, client.ContainerKillOptions{Signal: "KILL"})
	require.NoError(t, err)
	require.Eventually(t, func() bool { return e.state("rm") == hypervisor.StateCrashed }, 10*time.Second, 10*time.Millisecond)
	eng := newRemovingEngine(e, "rm")
	d, err := New(append(e.opts, WithAPIClient(eng))...)
	require.NoError(t, err)
	t.Cleanup(func() { d.Close() })

	res, err := d.Resume(t.Context(), hypervisor.ResumeOptions{})
	require.NoError(t, err)
	assert.Empty(t, res.Failed)
	assert.Empty(t, res.Resumed)
	<-eng.done
	rep, err := d.Reconcile(t.Context(), hypervisor.ReconcileOptions{Known: []string{"rm"}, Policy: hypervisor.ReconcileRemove})
	require.NoError(t, err)
	assert.Equal(t, []string{"rm"}, rep.Removed, "the record without a container")
	assert.Equal(t, []string{"rm"}, rep.Missing)
}

// TestLeftoverCommittedImagesGo: the committed images of snapshots whose
// process died (this driver's tag prefix, or the unprefixed tags of
// earlier versions on an image with this driver's instance label) are
// removed by PruneImages, and an instance's by its Destroy; another
// driver's stay.
func TestLeftoverCommittedImagesGo(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	e.spawn(e.spec("a"))
	e.spawn(e.spec("b"))
	commit := func(id, tag string) string {
		t.Helper()
		ref := snapshot.CommitRepository + ":" + tag
		_, err := e.cli.ContainerCommit(ctx, e.inspect(id).ID, client.ContainerCommitOptions{Reference: ref})
		require.NoError(t, err)
		t.Cleanup(func() { _, _ = e.cli.ImageRemove(context.WithoutCancel(ctx), ref, client.ImageRemoveOptions{}) })
		return ref
	}
	has := func(ref string) bool {
		_, err := e.cli.ImageInspect(ctx, ref)
		return err == nil
	}
	ownA := commit("a", snapshot.NewCommitTag(e.drv.commitTagPrefix()))
	legacyA := commit("a", snapshot.NewCommitTag(""))
	ownB := commit("b", snapshot.NewCommitTag(e.drv.commitTagPrefix()))
	// Another driver's: no label of this one, no prefix of this one.
	foreign := snapshot.CommitRepository + ":" + snapshot.NewCommitTag("")
	_, err := e.cli.ImageTag(ctx, client.ImageTagOptions{Source: e.image, Target: foreign})
	require.NoError(t, err)
	t.Cleanup(func() { _, _ = e.cli.ImageRemove(context.WithoutCancel(ctx), foreign, client.ImageRemoveOptions{}) })

	require.NoError(t, e.drv.Destroy(ctx, "b"))
	assert.False(t, has(ownB), "Destroy removes the instance's")
	assert.True(t, has(ownA), "not another instance's")

	_, err = e.drv.PruneImages(ctx, hypervisor.PruneOptions{})
	require.NoError(t, err)
	assert.False(t, has(ownA), "PruneImages removes this driver's")
	assert.False(t, has(legacyA), "and those of earlier versions with its label")
	assert.True(t, has(foreign), "never another driver's")
}
