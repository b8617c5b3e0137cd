package docker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/moby/moby/client"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dockervisor/dockervisor/hypervisor"
	"github.com/dockervisor/dockervisor/image"
	"github.com/dockervisor/dockervisor/image/busybox"
	"github.com/dockervisor/dockervisor/image/engine"
	"github.com/dockervisor/dockervisor/image/imagetest"
	"github.com/dockervisor/dockervisor/image/localdir"
	"github.com/dockervisor/dockervisor/internal/testenv"
)

// savedImage returns a `docker save` tarball made by the engine itself of
// a busybox image whose command prints marker. The engine image is removed
// again, so only the tarball remains.
func savedImage(t *testing.T, cli *client.Client, marker string) []byte {
	t.Helper()
	ctx := t.Context()
	ref := "dockervisor-test/saved:" + testenv.UniqueName("t")
	fs := testenv.BusyboxRootfs(t)
	repo, tag, _ := bytesCut(ref)
	rc, err := cli.ImageImport(ctx, client.ImageImportSource{Source: bytes.NewReader(fs), SourceName: "-"}, repo,
		client.ImageImportOptions{Tag: tag, Changes: []string{fmt.Sprintf(`CMD ["sh","-c","echo %s; trap 'exit 0' TERM; sleep 3600 & wait"]`, marker)}})
	require.NoError(t, err)
	require.NoError(t, busybox.DrainJSONStream(rc))
	rc.Close()
	save, err := cli.ImageSave(ctx, []string{ref})
	require.NoError(t, err)
	tarball, err := io.ReadAll(save)
	save.Close()
	require.NoError(t, err)
	_, err = cli.ImageRemove(ctx, ref, client.ImageRemoveOptions{Force: true, PruneChildren: true})
	require.NoError(t, err)
	return tarball
}

func bytesCut(ref string) (string, string, bool) {
	i := bytes.LastIndexByte([]byte(ref), ':')
	return ref[:i], ref[i+1:], i >= 0
}

// countingStore counts Open calls and can fail reads after some bytes.
type countingStore struct {
	image.Store
	opens    atomic.Int32
	failFrom int64  // >0: reads fail with image.ErrUnavailable after this many bytes
	bare     string // this image ID is reported with container format "bare"
}

func (s *countingStore) Stat(ctx context.Context, id string) (image.Metadata, error) {
	m, err := s.Store.Stat(ctx, id)
	if err == nil && id == s.bare {
		m.ContainerFormat = "bare" // as a Glance image of another kind is
	}
	return m, err
}

func (s *countingStore) Open(ctx context.Context, id string) (io.ReadCloser, error) {
	s.opens.Add(1)
	rc, err := s.Store.Open(ctx, id)
	if err != nil || s.failFrom == 0 {
		return rc, err
	}
	return failingReader{io.LimitReader(rc, s.failFrom), rc}, nil
}

type failingReader struct {
	r io.Reader
	c io.Closer
}

func (f failingReader) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if errors.Is(err, io.EOF) {
		return n, fmt.Errorf("%w: connection to store lost", image.ErrUnavailable)
	}
	return n, err
}
func (f failingReader) Close() error { return f.c.Close() }

// storeEnv is an env whose Driver spawns from an image store. Engine tags
// made from store IDs are removed at the end, after the instances.
func storeEnv(t *testing.T, store image.Reader) *env {
	e := newEnv(t, WithImageStore(store))
	return e
}

func (e *env) removeStoreTagAtEnd(storeID string) {
	tag := engine.TagFor(storeID)
	e.t.Cleanup(func() {
		e.destroyAll()
		_, err := e.cli.ImageRemove(context.WithoutCancel(e.t.Context()), tag, client.ImageRemoveOptions{Force: true, PruneChildren: true})
		if err != nil && !isNotFound(err) {
			e.t.Errorf("cleanup: remove %s: %v", tag, err)
		}
	})
}

func (e *env) hasTag(tag string) bool {
	_, err := e.cli.ImageInspect(e.t.Context(), tag)
	return err == nil
}

func TestSpawnFromLocalStoreFetchesOnceAndCaches(t *testing.T) {
	cli := testenv.MustHaveDocker(t)
	ld, err := localdir.New(t.TempDir())
	require.NoError(t, err)
	store := &countingStore{Store: ld}
	e := storeEnv(t, store)
	ctx := t.Context()
	id := testenv.UniqueName("img-")
	e.removeStoreTagAtEnd(id)
	meta, err := ld.Create(ctx, image.Metadata{ID: id, Name: "busybox", ContainerFormat: "docker", DiskFormat: "raw"}, bytes.NewReader(savedImage(t, cli, "v1")))
	require.NoError(t, err)
	require.False(t, e.hasTag(engine.TagFor(id)))

	// Concurrent spawns of the missing image download it once.
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			spec := e.spec(fmt.Sprintf("s%d", i))
			spec.Image, spec.Command = meta.ID, nil
			_, err := e.drv.Spawn(ctx, spec)
			assert.NoError(t, err)
		}()
	}
	wg.Wait()
	assert.EqualValues(t, 1, store.opens.Load(), "one download for four spawns")
	assert.True(t, e.hasTag(engine.TagFor(id)))
	info, err := e.drv.Info(ctx, "s0")
	require.NoError(t, err)
	assert.Equal(t, id, info.Image, "instances name the store image")
	out, err := e.drv.ConsoleOutput(ctx, "s0", hypervisor.ConsoleOptions{})
	require.NoError(t, err)
	assert.Equal(t, "v1\n", string(out), "the image's own command runs")

	// A later spawn reuses the cached engine image.
	spec := e.spec("s9")
	spec.Image, spec.Command = id, nil
	e.spawn(spec)
	assert.EqualValues(t, 1, store.opens.Load())

	// The store image changes: the next spawn fetches it again.
	require.NoError(t, ld.Delete(ctx, id))
	_, err = ld.Create(ctx, image.Metadata{ID: id, Name: "busybox", ContainerFormat: "docker", DiskFormat: "raw"}, bytes.NewReader(savedImage(t, cli, "v2")))
	require.NoError(t, err)
	spec = e.spec("s10")
	spec.Image, spec.Command = id, nil
	e.spawn(spec)
	assert.EqualValues(t, 2, store.opens.Load())
	require.Eventually(t, func() bool {
		out, err := e.drv.ConsoleOutput(ctx, "s10", hypervisor.ConsoleOptions{})
		return err == nil && string(out) == "v2\n"
	}, 10e9, 50e6, "the refreshed image runs")

	// The old version lost its tag; it goes with its last instance.
	old := e.inspect("s0").Image
	for _, id := range []string{"s0", "s1", "s2", "s3", "s9"} {
		_, err := e.cli.ImageInspect(ctx, old)
		require.NoError(t, err, "still used by %s", id)
		require.NoError(t, e.drv.Destroy(ctx, id))
	}
	_, err = e.cli.ImageInspect(ctx, old)
	assert.True(t, isNotFound(err), "the superseded image is removed: %v", err)

	// A new Driver (agent restart) trusts the cache record.
	d2 := e.newDriver()
	spec = e.spec("s11")
	spec.Image, spec.Command = id, nil
	_, err = d2.Spawn(ctx, spec)
	require.NoError(t, err)
	assert.EqualValues(t, 2, store.opens.Load())
}

func TestSameNamedStoreImagesDoNotCollide(t *testing.T) {
	cli := testenv.MustHaveDocker(t)
	store := imagetest.NewMemStore()
	e := storeEnv(t, store)
	ctx := t.Context()
	ids := []string{testenv.UniqueName("a-"), testenv.UniqueName("b-")}
	for i, id := range ids {
		e.removeStoreTagAtEnd(id)
		_, err := store.Create(ctx, image.Metadata{ID: id, Name: "same-name", ContainerFormat: "docker", DiskFormat: "raw"},
			bytes.NewReader(savedImage(t, cli, fmt.Sprintf("image-%d", i))))
		require.NoError(t, err)
		spec := e.spec(fmt.Sprintf("n%d", i))
		spec.Image, spec.Command = id, nil
		e.spawn(spec)
	}
	for i := range ids {
		require.Eventually(t, func() bool {
			out, err := e.drv.ConsoleOutput(ctx, fmt.Sprintf("n%d", i), hypervisor.ConsoleOptions{})
			return err == nil && string(out) == fmt.Sprintf("image-%d\n", i)
		}, 10e9, 50e6)
	}
	assert.NotEqual(t, engine.TagFor(ids[0]), engine.TagFor(ids[1]))
}

func TestSpawnFromStoreFaults(t *testing.T) {
	cli := testenv.MustHaveDocker(t)
	good := savedImage(t, cli, "ok")
	mem := imagetest.NewMemStore()
	store := &countingStore{Store: mem}
	e := storeEnv(t, store)
	ctx := t.Context()

	create := func(meta image.Metadata, data []byte) string {
		t.Helper()
		meta.ID = testenv.UniqueName("f-")
		if meta.ContainerFormat == "" {
			meta.ContainerFormat = "docker"
		}
		e.removeStoreTagAtEnd(meta.ID)
		_, err := mem.Create(ctx, meta, bytes.NewReader(data))
		require.NoError(t, err)
		return meta.ID
	}
	corrupt := create(image.Metadata{}, good)
	require.NoError(t, mem.Corrupt(ctx, corrupt))
	notArchive := create(image.Metadata{}, bytes.Repeat([]byte("not a tar "), 5000))
	truncated := create(image.Metadata{}, good[:len(good)/2])
	otherFormat := create(image.Metadata{}, good)
	store.bare = otherFormat
	midway := create(image.Metadata{}, good)

	cases := []struct {
		name    string
		image   string
		failAt  int64
		classes []error
	}{
		{"missing store image", "no-such-image", 0, []error{hypervisor.ErrImageNotFound, image.ErrNotFound}},
		{"checksum mismatch", corrupt, 0, []error{image.ErrChecksumMismatch}},
		{"not a docker archive", notArchive, 0, []error{image.ErrUnsupportedFormat}},
		{"truncated archive", truncated, 0, []error{image.ErrUnsupportedFormat}},
		{"other container format", otherFormat, 0, []error{hypervisor.ErrInvalidArgument, image.ErrUnsupportedFormat}},
		{"store lost mid-download", midway, int64(len(good) / 3), []error{hypervisor.ErrUnavailable, image.ErrUnavailable}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			store.failFrom = tc.failAt
			defer func() { store.failFrom = 0 }()
			spec := e.spec("bad")
			spec.Image = tc.image
			_, err := e.drv.Spawn(ctx, spec)
			for _, c := range tc.classes {
				assert.ErrorIs(t, err, c)
			}
			assert.Zero(t, e.containersNamed(e.drv.containerName("bad")), "no container left")
			assert.False(t, e.hasTag(engine.TagFor(tc.image)), "no half-loaded or mis-tagged image")
		})
	}
	list, err := cli.ImageList(ctx, client.ImageListOptions{All: true, Filters: make(client.Filters).Add("reference", engine.TagRepository+":*")})
	require.NoError(t, err)
	for _, img := range list.Items {
		for _, tag := range img.RepoTags {
			for _, id := range []string{corrupt, notArchive, truncated, otherFormat, midway} {
				assert.NotEqual(t, engine.TagFor(id), tag)
			}
		}
	}
}
