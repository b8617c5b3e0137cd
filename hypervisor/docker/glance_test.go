package docker

import (
	"bytes"
	"context"
	"io"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/moby/moby/client"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dockervisor/dockervisor/hypervisor"
	"github.com/dockervisor/dockervisor/image"
	"github.com/dockervisor/dockervisor/image/engine"
	"github.com/dockervisor/dockervisor/image/glance"
	"github.com/dockervisor/dockervisor/internal/testarchive"
	"github.com/dockervisor/dockervisor/internal/testenv"
)

// TestSpawnFromGlance uploads an engine-made `docker save` tarball to the
// real (shared, private) glance-api and spawns an instance from its Glance
// image ID: the image's own command runs.
func TestSpawnFromGlance(t *testing.T) {
	cli := testenv.MustHaveDocker(t)
	gs, err := glance.NewNoAuth(testenv.MustHaveGlance(t))
	require.NoError(t, err)
	ctx := t.Context()
	marker := testenv.UniqueName("from-glance-")
	m, err := gs.Create(ctx, image.Metadata{Name: "dockervisor-test-" + marker, ContainerFormat: image.ContainerFormatDocker, DiskFormat: image.DiskFormatRaw},
		bytes.NewReader(savedImage(t, cli, marker)))
	require.NoError(t, err)
	t.Cleanup(func() { // runs last: after the instance and the tag are gone
		if err := gs.Delete(context.WithoutCancel(t.Context()), m.ID); err != nil {
			t.Errorf("cleanup: delete glance image %s: %v", m.ID, err)
		}
	})
	require.NotEmpty(t, m.SHA256)

	e := storeEnv(t, gs)
	e.removeStoreTagAtEnd(m.ID)
	tag := engine.TagFor(m.ID)
	require.False(t, e.hasTag(tag))
	spec := e.spec("g1")
	spec.Image, spec.Command = m.ID, nil
	inst := e.spawn(spec)
	assert.Equal(t, m.ID, inst.Image, "the instance names the Glance image")
	assert.Equal(t, hypervisor.StateRunning, e.state("g1"))
	assert.True(t, e.hasTag(tag), "the Glance image is cached under its tag")
	require.Eventually(t, func() bool {
		out, err := e.drv.ConsoleOutput(ctx, "g1", hypervisor.ConsoleOptions{})
		return err == nil && string(out) == marker+"\n"
	}, 10e9, 50e6, "the Glance image's own command runs")

	require.NoError(t, e.drv.Destroy(ctx, "g1"))
	assert.Zero(t, e.containersNamed(e.drv.containerName("g1")))
}

// killingStore is a store whose Open streams kill the store's server once
// more than after bytes have been read.
type killingStore struct {
	image.Reader
	after  int64
	kill   func()
	killed atomic.Bool
}

func (s *killingStore) Open(ctx context.Context, id string) (io.ReadCloser, error) {
	rc, err := s.Reader.Open(ctx, id)
	if err != nil {
		return nil, err
	}
	return &killingReader{ReadCloser: rc, s: s}, nil
}

type killingReader struct {
	io.ReadCloser
	s *killingStore
	n int64
}

func (r *killingReader) Read(p []byte) (int, error) {
	n, err := r.ReadCloser.Read(p)
	r.n += int64(n)
	if r.n > r.s.after && !r.s.killed.Swap(true) {
		r.s.kill()
	}
	return n, err
}

// engineImageIDs returns the IDs of all the engine's images.
func engineImageIDs(t *testing.T, cli *client.Client) []string {
	t.Helper()
	res, err := cli.ImageList(t.Context(), client.ImageListOptions{All: true})
	require.NoError(t, err)
	ids := make([]string, 0, len(res.Items))
	for _, im := range res.Items {
		ids = append(ids, im.ID)
	}
	return ids
}

// TestSpawnGlanceKilledMidDownload spawns from a real glance-api (an extra
// one owned by the test) that is killed with SIGKILL while Spawn streams
// the image into the engine. Spawn must fail as unavailable and leave
// nothing behind: no container, no tag, no (half-)loaded image.
func TestSpawnGlanceKilledMidDownload(t *testing.T) {
	cli := testenv.MustHaveDocker(t)
	ep, stop := testenv.StartGlance(t)
	gs, err := glance.NewNoAuth(ep)
	require.NoError(t, err)
	ctx := t.Context()
	arch := testarchive.New(t, 96<<20) // far more than the socket buffers hold
	src := arch.Reader()
	m, err := gs.Create(ctx, image.Metadata{Name: "killed-mid-download"}, src)
	src.Close()
	require.NoError(t, err)
	archID := arch.ImageID()

	store := &killingStore{Reader: gs, after: 1 << 20, kill: stop}
	e := storeEnv(t, store)
	e.removeStoreTagAtEnd(m.ID)
	t.Cleanup(func() { // in case the engine did keep the image
		_, err := cli.ImageRemove(context.WithoutCancel(t.Context()), archID, client.ImageRemoveOptions{Force: true, PruneChildren: true})
		if err != nil && !isNotFound(err) {
			t.Errorf("cleanup: remove %s: %v", archID, err)
		}
	})
	before := engineImageIDs(t, cli)

	spec := e.spec("k1")
	spec.Image, spec.Command = m.ID, nil
	_, err = e.drv.Spawn(ctx, spec)
	require.True(t, store.killed.Load(), "glance-api was killed during the download")
	require.Error(t, err)
	assert.ErrorIs(t, err, hypervisor.ErrUnavailable)
	assert.ErrorIs(t, err, image.ErrUnavailable)
	t.Logf("spawn: %v", err)

	assert.Zero(t, e.containersNamed(e.drv.containerName("k1")), "no container is left")
	list, err := e.drv.List(ctx, hypervisor.ListOptions{})
	require.NoError(t, err)
	assert.Empty(t, list)
	assert.False(t, e.hasTag(engine.TagFor(m.ID)), "no tag for the store image")
	assert.False(t, e.hasTag(arch.RepoTag), "no tag from the archive")
	_, err = cli.ImageInspect(ctx, archID)
	assert.True(t, isNotFound(err), "the archive's image was not loaded: %v", err)
	// Other test processes may share the engine: an image that appeared
	// meanwhile fails the test only if it is this archive's.
	for _, id := range engineImageIDs(t, cli) {
		if slices.Contains(before, id) {
			continue
		}
		res, err := cli.ImageInspect(ctx, id)
		if err != nil {
			continue // gone again
		}
		if res.Config != nil && res.Config.Labels["dockervisor.test"] == arch.Label() {
			t.Errorf("half-loaded image %s left on the engine", id)
		} else {
			t.Logf("image %s appeared meanwhile (another test process?): %v", id, res.RepoTags)
		}
	}
}
