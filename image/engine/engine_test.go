package engine_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"testing"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/google/uuid"
	"github.com/moby/moby/client"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dockervisor/dockervisor/image"
	"github.com/dockervisor/dockervisor/image/engine"
	"github.com/dockervisor/dockervisor/image/localdir"
	"github.com/dockervisor/dockervisor/internal/testarchive"
	"github.com/dockervisor/dockervisor/internal/testenv"
)

func TestTagFor(t *testing.T) {
	tests := []struct {
		id   string
		want string // empty: only check validity
	}{
		{"0c3a2c4e-7a65-4d4c-9b1e-2f3c0a9c1f10", "dockervisor/image:0c3a2c4e-7a65-4d4c-9b1e-2f3c0a9c1f10"},
		{"busybox-1", "dockervisor/image:busybox-1"},
		{"ABC", ""},
		{"abc/../x", ""},
		{".hidden", ""},
		{"", ""},
		{string(bytes.Repeat([]byte("a"), 300)), ""},
	}
	seen := map[string]string{}
	for _, tt := range tests {
		got := engine.TagFor(tt.id)
		if tt.want != "" {
			assert.Equal(t, tt.want, got)
		}
		assert.Regexp(t, `^dockervisor/image:[a-z0-9_][a-z0-9_.-]{0,127}$`, got)
		assert.Equal(t, got, engine.TagFor(tt.id), "deterministic")
		if other, ok := seen[got]; ok {
			t.Errorf("%q and %q share tag %s", tt.id, other, got)
		}
		seen[got] = tt.id
	}
	assert.NotEqual(t, engine.TagFor("ABC"), engine.TagFor("abc"))
}

// removeOnCleanup removes an image by reference or ID at the end.
func removeOnCleanup(t *testing.T, cli *client.Client, ref string) {
	t.Cleanup(func() {
		_, err := cli.ImageRemove(context.WithoutCancel(t.Context()), ref, client.ImageRemoveOptions{Force: true, PruneChildren: true})
		if err != nil && !cerrdefs.IsNotFound(err) {
			t.Errorf("cleanup: remove image %s: %v", ref, err)
		}
	})
}

func assertNoImage(t *testing.T, cli *client.Client, refs ...string) {
	t.Helper()
	for _, ref := range refs {
		_, err := cli.ImageInspect(context.WithoutCancel(t.Context()), ref)
		assert.True(t, cerrdefs.IsNotFound(err), "%s is on the engine (err %v)", ref, err)
	}
}

func newTag() string { return engine.TagFor(uuid.NewString()) }

// TestLoadEngineSave loads a tarball the engine itself saved.
func TestLoadEngineSave(t *testing.T) {
	cli := testenv.MustHaveDocker(t)
	ctx := t.Context()
	ref := testenv.BusyboxImage(t)
	src, err := cli.ImageInspect(ctx, ref)
	require.NoError(t, err)

	rc, err := engine.Save(ctx, cli, ref)
	require.NoError(t, err)
	saved, err := io.ReadAll(rc)
	require.NoError(t, rc.Close())
	require.NoError(t, err)

	tag := newTag()
	removeOnCleanup(t, cli, tag)
	id, err := engine.Load(ctx, cli, bytes.NewReader(saved), tag)
	require.NoError(t, err)
	assert.Equal(t, src.ID, id)
	got, err := cli.ImageInspect(ctx, tag)
	require.NoError(t, err)
	assert.Equal(t, src.ID, got.ID)
	assert.ElementsMatch(t, []string{ref, tag}, got.RepoTags)

	// Loading again is a no-op.
	id2, err := engine.Load(ctx, cli, bytes.NewReader(saved), tag)
	require.NoError(t, err)
	assert.Equal(t, id, id2)
}

// TestLoadFromStore loads archives streamed from a localdir store; the
// archive's own tags never reach the engine.
func TestLoadFromStore(t *testing.T) {
	tests := []struct {
		name string
		spec func(*testarchive.Spec)
	}{
		{"two layers", nil},
		{"layer linked twice", func(s *testarchive.Spec) { s.DupLayer = true }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := testarchive.New(t, 3<<20)
			if tt.spec != nil {
				tt.spec(spec)
			}
			testLoadFromStore(t, spec)
		})
	}
}

func testLoadFromStore(t *testing.T, spec *testarchive.Spec) {
	cli := testenv.MustHaveDocker(t)
	ctx := t.Context()
	s, err := localdir.New(t.TempDir())
	require.NoError(t, err)
	var buf bytes.Buffer
	_, err = spec.WriteTo(&buf)
	require.NoError(t, err)
	meta, err := s.Create(ctx, image.Metadata{Name: "synthetic"}, &buf)
	require.NoError(t, err)

	tag := engine.TagFor(meta.ID)
	removeOnCleanup(t, cli, tag)
	removeOnCleanup(t, cli, spec.RepoTag)
	rc, err := s.Open(ctx, meta.ID)
	require.NoError(t, err)
	defer rc.Close()
	id, err := engine.Load(ctx, cli, rc, tag)
	require.NoError(t, err)
	assert.Equal(t, spec.ImageID(), id)

	got, err := cli.ImageInspect(ctx, id)
	require.NoError(t, err)
	assert.Equal(t, []string{tag}, got.RepoTags, "only the deterministic tag")
	assertNoImage(t, cli, spec.RepoTag)
}

var errSource = errors.New("source failed")

type failAfter struct {
	r   io.Reader
	n   int64
	err error
}

func (f *failAfter) Read(p []byte) (int, error) {
	if f.n <= 0 {
		return 0, f.err
	}
	if int64(len(p)) > f.n {
		p = p[:f.n]
	}
	n, err := f.r.Read(p)
	f.n -= int64(n)
	return n, err
}

type cancelAfter struct {
	r      io.Reader
	n      int64
	cancel context.CancelFunc
}

func (c *cancelAfter) Read(p []byte) (int, error) {
	if c.n <= 0 {
		c.cancel()
	}
	n, err := c.r.Read(p)
	c.n -= int64(n)
	return n, err
}

// TestLoadFailuresLeaveNothing loads broken archives and sources and
// checks that neither the target tag, nor the archive's tag, nor the image
// is on the engine afterwards.
func TestLoadFailuresLeaveNothing(t *testing.T) {
	cli := testenv.MustHaveDocker(t)
	tests := []struct {
		name   string
		spec   func(s *testarchive.Spec)
		source func(t *testing.T, ctx context.Context, cancel context.CancelFunc, archive []byte) io.Reader
		want   error
	}{
		{"truncated tar", nil, func(_ *testing.T, _ context.Context, _ context.CancelFunc, a []byte) io.Reader {
			return bytes.NewReader(a[:len(a)/2])
		}, image.ErrUnsupportedFormat},
		{"truncated in the last entry", nil, func(_ *testing.T, _ context.Context, _ context.CancelFunc, a []byte) io.Reader {
			return bytes.NewReader(a[:len(a)-1500])
		}, image.ErrUnsupportedFormat},
		{"not a tar", nil, func(t *testing.T, _ context.Context, _ context.CancelFunc, a []byte) io.Reader {
			return bytes.NewReader(bytes.Repeat([]byte("garbage!"), 10000))
		}, image.ErrUnsupportedFormat},
		{"tar without manifest (a root file system)", nil, func(t *testing.T, _ context.Context, _ context.CancelFunc, _ []byte) io.Reader {
			return bytes.NewReader(testenv.BusyboxRootfs(t))
		}, image.ErrUnsupportedFormat},
		{"manifest names a missing layer", func(s *testarchive.Spec) { s.NoLayer = true }, nil, image.ErrUnsupportedFormat},
		{"two images", func(s *testarchive.Spec) { s.Images = 2 }, nil, image.ErrUnsupportedFormat},
		{"source error mid-stream", nil, func(_ *testing.T, _ context.Context, _ context.CancelFunc, a []byte) io.Reader {
			return &failAfter{r: bytes.NewReader(a), n: int64(len(a) / 2), err: errSource}
		}, errSource},
		{"source error after the whole archive", nil, func(_ *testing.T, _ context.Context, _ context.CancelFunc, a []byte) io.Reader {
			return &failAfter{r: bytes.NewReader(a), n: int64(len(a)), err: errSource}
		}, errSource},
		{"store checksum mismatch", nil, func(t *testing.T, ctx context.Context, _ context.CancelFunc, a []byte) io.Reader {
			s, err := localdir.New(t.TempDir())
			require.NoError(t, err)
			m, err := s.Create(ctx, image.Metadata{}, bytes.NewReader(a))
			require.NoError(t, err)
			p, err := s.Path(m.ID)
			require.NoError(t, err)
			// Flip a byte inside the big file's data: the tar stays valid.
			f, err := os.OpenFile(p, os.O_RDWR, 0)
			require.NoError(t, err)
			_, err = f.WriteAt([]byte{0xff}, int64(len(a)/2))
			require.NoError(t, err)
			require.NoError(t, f.Close())
			rc, err := s.Open(ctx, m.ID)
			require.NoError(t, err)
			t.Cleanup(func() { rc.Close() })
			return rc
		}, image.ErrChecksumMismatch},
		{"context cancelled mid-stream", nil, func(_ *testing.T, _ context.Context, cancel context.CancelFunc, a []byte) io.Reader {
			return &cancelAfter{r: bytes.NewReader(a), n: int64(len(a) / 2), cancel: cancel}
		}, context.Canceled},
		{"engine refuses the archive (wrong diff ID)", func(s *testarchive.Spec) { s.BadDiff = true }, nil, engine.ErrLoadFailed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			spec := testarchive.New(t, 1<<20)
			if tt.spec != nil {
				tt.spec(spec)
			}
			archive := spec.Bytes(t)
			id := spec.ImageID()
			tag := newTag()
			removeOnCleanup(t, cli, tag)
			removeOnCleanup(t, cli, spec.RepoTag)
			removeOnCleanup(t, cli, id)
			var src io.Reader = bytes.NewReader(archive)
			if tt.source != nil {
				src = tt.source(t, ctx, cancel, archive)
			}
			_, err := engine.Load(ctx, cli, src, tag)
			require.ErrorIs(t, err, tt.want)
			assertNoImage(t, cli, tag, spec.RepoTag, id)
		})
	}
}

// TestLoadFailureKeepsPriorTag: a failed load leaves an existing tag where
// it was.
func TestLoadFailureKeepsPriorTag(t *testing.T) {
	cli := testenv.MustHaveDocker(t)
	ctx := t.Context()
	ref := testenv.BusyboxImage(t)
	prior, err := cli.ImageInspect(ctx, ref)
	require.NoError(t, err)
	tag := newTag()
	_, err = cli.ImageTag(ctx, client.ImageTagOptions{Source: ref, Target: tag})
	require.NoError(t, err)
	removeOnCleanup(t, cli, tag)

	for _, bad := range []func(*testarchive.Spec){nil, func(s *testarchive.Spec) { s.BadDiff = true }} {
		spec := testarchive.New(t, 0)
		if bad != nil {
			bad(spec)
		}
		archive := spec.Bytes(t)
		removeOnCleanup(t, cli, spec.RepoTag)
		removeOnCleanup(t, cli, spec.ImageID())
		src := io.Reader(&failAfter{r: bytes.NewReader(archive), n: int64(len(archive)), err: errSource})
		if bad != nil {
			src = bytes.NewReader(archive)
		}
		_, err = engine.Load(ctx, cli, src, tag)
		require.Error(t, err)
		got, err := cli.ImageInspect(ctx, tag)
		require.NoError(t, err)
		assert.Equal(t, prior.ID, got.ID)
	}
}

func TestSave(t *testing.T) {
	cli := testenv.MustHaveDocker(t)
	ctx := t.Context()
	tests := []struct {
		name string
		ref  string
		want error
	}{
		{"missing image", "dockervisor-test/none:" + testenv.UniqueName("x"), image.ErrNotFound},
		{"no tag", "dockervisor-test/none", image.ErrInvalidArgument},
		{"digest", "busybox@sha256:0000000000000000000000000000000000000000000000000000000000000000", image.ErrInvalidArgument},
		{"upper case", "Busybox:1", image.ErrInvalidArgument},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rc, err := engine.Save(ctx, cli, tt.ref)
			if rc != nil {
				rc.Close()
			}
			require.ErrorIs(t, err, tt.want)
		})
	}
}
