package snapshot_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dockervisor/dockervisor/image"
	"github.com/dockervisor/dockervisor/image/imagetest"
	"github.com/dockervisor/dockervisor/internal/testenv"
	"github.com/dockervisor/dockervisor/snapshot"
)

// failingStore refuses every Create after reading some of the data.
type failingStore struct{ *imagetest.MemStore }

func (s failingStore) Create(ctx context.Context, m image.Metadata, r io.Reader) (image.Metadata, error) {
	_, _ = io.CopyN(io.Discard, r, 1<<10)
	return image.Metadata{}, errors.Join(image.ErrUnavailable, errors.New("store went away"))
}

// lateStore reads all the data, then waits until gone says the committed
// image is removed before it stores the image: a store still finishing
// its upload while the engine is done with the committed image.
type lateStore struct {
	*imagetest.MemStore
	gone func() bool
}

func (s lateStore) Create(ctx context.Context, m image.Metadata, r io.Reader) (image.Metadata, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return image.Metadata{}, err
	}
	for deadline := time.Now().Add(10 * time.Second); !s.gone(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			return image.Metadata{}, errors.New("the committed image is still on the engine 10 s after its save ended")
		}
	}
	return s.MemStore.Create(ctx, m, bytes.NewReader(data))
}

// commitRecorder is the engine, noting the reference of every commit.
type commitRecorder struct {
	snapshot.Engine
	refs []string
}

func (c *commitRecorder) ContainerCommit(ctx context.Context, id string, opts client.ContainerCommitOptions) (client.ContainerCommitResult, error) {
	c.refs = append(c.refs, opts.Reference)
	return c.Engine.ContainerCommit(ctx, id, opts)
}

// TestTake snapshots a running busybox container on the real engine into
// a memory store, then fails a second snapshot in the store: the first
// stores the image with its properties and removes the committed image,
// the second leaves nothing and the container running.
func TestTake(t *testing.T) {
	cli := testenv.MustHaveDocker(t)
	img := testenv.BusyboxImage(t)
	ctx := t.Context()
	name := testenv.UniqueName("snaptest-")
	c, err := cli.ContainerCreate(ctx, client.ContainerCreateOptions{Name: name,
		Config:     &container.Config{Image: img, Cmd: []string{"sh", "-c", "echo hi > /f; sleep 3600"}},
		HostConfig: &container.HostConfig{NetworkMode: "none"}})
	require.NoError(t, err)
	t.Cleanup(func() {
		_, _ = cli.ContainerRemove(context.WithoutCancel(ctx), c.ID, client.ContainerRemoveOptions{Force: true})
	})
	_, err = cli.ContainerStart(ctx, c.ID, client.ContainerStartOptions{})
	require.NoError(t, err)

	store := imagetest.NewMemStore()
	var phases []snapshot.Phase
	m, err := snapshot.Take(ctx, cli, store, snapshot.Request{
		ContainerID: c.ID, Running: true, Name: "Any Name ✓", InstanceID: "i-1", BaseImageRef: "base",
		Properties: map[string]string{"k": "v"},
		Progress: func(p snapshot.Progress) {
			if len(phases) == 0 || phases[len(phases)-1] != p.Phase {
				phases = append(phases, p.Phase)
			}
		},
	})
	require.NoError(t, err)
	assert.Equal(t, []snapshot.Phase{snapshot.PhasePausing, snapshot.PhaseCommitting, snapshot.PhaseUploading, snapshot.PhaseDone}, phases)
	assert.Equal(t, "Any Name ✓", m.Name)
	assert.Equal(t, "snapshot", m.Properties[snapshot.PropImageType])
	assert.Equal(t, "i-1", m.Properties[snapshot.PropInstanceUUID])
	assert.Equal(t, "base", m.Properties[snapshot.PropBaseImageRef])
	assert.Equal(t, "v", m.Properties["k"])
	_, err = cli.ImageInspect(ctx, m.Properties[snapshot.PropEngineImageID])
	assert.Error(t, err, "the committed image is removed")
	list, err := snapshot.List(ctx, store, "i-1")
	require.NoError(t, err)
	assert.Len(t, list, 1)

	rec := &commitRecorder{Engine: cli}
	_, err = snapshot.Take(ctx, rec, failingStore{store}, snapshot.Request{ContainerID: c.ID, Running: true, InstanceID: "i-1"})
	var se *snapshot.Error
	require.ErrorAs(t, err, &se)
	assert.Equal(t, snapshot.PhaseUploading, se.Phase)
	assert.ErrorIs(t, err, image.ErrUnavailable)
	res, err := cli.ContainerInspect(ctx, c.ID, client.ContainerInspectOptions{})
	require.NoError(t, err)
	assert.Equal(t, container.StateRunning, res.Container.State.Status, "unpaused after the failure")
	// Other packages' tests commit into the same repository at the same
	// time: look for this snapshot's own commit only.
	require.Len(t, rec.refs, 1, "one commit")
	_, err = cli.ImageInspect(ctx, rec.refs[0])
	assert.True(t, cerrdefs.IsNotFound(err), "no committed image left: %v", err)

	// The committed image is removed as soon as its save has ended, while
	// the store still finishes the upload.
	rec.refs = nil
	late := lateStore{MemStore: store, gone: func() bool {
		_, err := cli.ImageInspect(ctx, rec.refs[0])
		return cerrdefs.IsNotFound(err)
	}}
	m2, err := snapshot.Take(ctx, rec, late, snapshot.Request{ContainerID: c.ID, Running: true, InstanceID: "i-1"})
	require.NoError(t, err)
	require.NoError(t, store.Delete(ctx, m2.ID))

	// A caller's tag and store ID, recorded before the snapshot to find
	// it after a crash, are the ones used.
	rec.refs = nil
	tag := snapshot.NewCommitTag("t-")
	m3, err := snapshot.Take(ctx, rec, store, snapshot.Request{ContainerID: c.ID, InstanceID: "i-1", Tag: tag, ImageID: "caller-chosen-id"})
	require.NoError(t, err)
	assert.Equal(t, []string{snapshot.CommitRepository + ":" + tag}, rec.refs)
	assert.Equal(t, "caller-chosen-id", m3.ID)
	require.NoError(t, store.Delete(ctx, m3.ID))
	_, err = snapshot.Take(ctx, rec, store, snapshot.Request{ContainerID: c.ID, Tag: "../x"})
	assert.ErrorIs(t, err, snapshot.ErrInvalidRequest)

	_, err = snapshot.Take(ctx, cli, store, snapshot.Request{ContainerID: c.ID, Properties: map[string]string{snapshot.PropInstanceUUID: "x"}})
	assert.ErrorIs(t, err, snapshot.ErrInvalidRequest)
	assert.ErrorIs(t, err, image.ErrInvalidArgument)

	n, err := snapshot.DeleteAll(ctx, store, "i-1")
	require.NoError(t, err)
	assert.Equal(t, 1, n)
}

// TestOpenInBackground: a Read waits for the open and returns its data or
// its error; Close cancels an open still under way and waits for it.
func TestOpenInBackground(t *testing.T) {
	release := make(chan struct{})
	src := snapshot.OpenInBackgroundForTest(t.Context(), func(context.Context) (io.ReadCloser, error) {
		<-release
		return io.NopCloser(bytes.NewReader([]byte("data"))), nil
	})
	close(release)
	b, err := io.ReadAll(src)
	require.NoError(t, err)
	assert.Equal(t, "data", string(b))
	require.NoError(t, src.Close())

	boom := errors.New("engine refused")
	src = snapshot.OpenInBackgroundForTest(t.Context(), func(context.Context) (io.ReadCloser, error) { return nil, boom })
	_, err = src.Read(make([]byte, 8))
	assert.ErrorIs(t, err, boom)
	require.NoError(t, src.Close())

	cancelled := make(chan error, 1)
	src = snapshot.OpenInBackgroundForTest(t.Context(), func(ctx context.Context) (io.ReadCloser, error) {
		<-ctx.Done()
		cancelled <- ctx.Err()
		return nil, ctx.Err()
	})
	require.NoError(t, src.Close())
	select {
	case err := <-cancelled:
		assert.ErrorIs(t, err, context.Canceled, "Close cancels the open")
	default:
		t.Fatal("Close returned before the open ended")
	}
}
