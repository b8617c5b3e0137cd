package localdir_test

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dockervisor/dockervisor/image"
	"github.com/dockervisor/dockervisor/image/imagetest"
	"github.com/dockervisor/dockervisor/image/localdir"
)

// corruptible adds imagetest.Corrupter to a localdir store by flipping a
// bit of the data file behind the store's back.
type corruptible struct{ *localdir.Store }

func (c corruptible) Corrupt(_ context.Context, id string) error {
	p, err := c.Path(id)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, 100); err != nil {
		return err
	}
	b[0] ^= 0x01
	_, err = f.WriteAt(b, 100)
	return err
}

func newStore(t *testing.T) *localdir.Store {
	t.Helper()
	s, err := localdir.New(t.TempDir())
	require.NoError(t, err)
	return s
}

func TestConformance(t *testing.T) {
	imagetest.TestStore(t, func(t *testing.T) image.Store {
		return corruptible{newStore(t)}
	})
}

// dirNames lists the files in the store directory.
func dirNames(t *testing.T, s *localdir.Store) []string {
	t.Helper()
	entries, err := os.ReadDir(s.Dir())
	require.NoError(t, err)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func TestFiles(t *testing.T) {
	s := newStore(t)
	m, err := s.Create(t.Context(), image.Metadata{ID: "img1", Name: "n"}, strings.NewReader("data"))
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{"img1.tar", "img1.json"}, dirNames(t, s))
	b, err := os.ReadFile(filepath.Join(s.Dir(), "img1.tar"))
	require.NoError(t, err)
	assert.Equal(t, "data", string(b))
	assert.Equal(t, "3a6eb0790f39ac87c94f3856b2dd2c5d110e6811602261a9a923d3bb23adc8b7", m.SHA256)
}

func TestInvalidIDs(t *testing.T) {
	s := newStore(t)
	outside := filepath.Join(filepath.Dir(s.Dir()), "escaped")
	tests := []struct{ name, id string }{
		{"empty after default is not possible; explicit dot", "."},
		{"dot dot", ".."},
		{"parent path", "../escaped"},
		{"absolute path", outside},
		{"slash", "a/b"},
		{"backslash", `a\b`},
		{"hidden", ".hidden"},
		{"temp name", ".tmp-0123"},
		{"nul", "a\x00b"},
		{"space", "a b"},
		{"too long", strings.Repeat("a", 201)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := t.Context()
			_, err := s.Create(ctx, image.Metadata{ID: tt.id}, strings.NewReader("x"))
			assert.ErrorIs(t, err, image.ErrInvalidArgument)
			_, err = s.Stat(ctx, tt.id)
			assert.ErrorIs(t, err, image.ErrInvalidArgument)
			assert.NotErrorIs(t, err, image.ErrNotFound, "one class")
			_, err = s.Open(ctx, tt.id)
			assert.ErrorIs(t, err, image.ErrInvalidArgument)
			assert.NotErrorIs(t, err, image.ErrNotFound, "one class")
			assert.ErrorIs(t, s.Delete(ctx, tt.id), image.ErrInvalidArgument)
		})
	}
	assert.Empty(t, dirNames(t, s))
	_, err := os.Stat(outside + ".tar")
	assert.ErrorIs(t, err, os.ErrNotExist)
}

func TestValidIDs(t *testing.T) {
	s := newStore(t)
	for _, id := range []string{"a", "0", "f0e1d2c3-b4a5-4697-8899-aabbccddeeff", "sha256.abc_def-1", strings.Repeat("z", 200)} {
		_, err := s.Create(t.Context(), image.Metadata{ID: id}, strings.NewReader(id))
		assert.NoError(t, err, id)
	}
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

func TestFailedCreateRemovesTempFiles(t *testing.T) {
	s := newStore(t)
	boom := io.ErrUnexpectedEOF
	_, err := s.Create(t.Context(), image.Metadata{ID: "x"}, io.MultiReader(strings.NewReader(strings.Repeat("a", 1<<20)), errReader{boom}))
	require.ErrorIs(t, err, boom)
	assert.Empty(t, dirNames(t, s))
}

func TestDamagedData(t *testing.T) {
	tests := []struct {
		name   string
		damage func(t *testing.T, path string)
	}{
		{"truncated", func(t *testing.T, p string) { require.NoError(t, os.Truncate(p, 10)) }},
		{"extended", func(t *testing.T, p string) {
			f, err := os.OpenFile(p, os.O_APPEND|os.O_WRONLY, 0)
			require.NoError(t, err)
			_, err = f.WriteString("more")
			require.NoError(t, err)
			require.NoError(t, f.Close())
		}},
		{"replaced same size", func(t *testing.T, p string) {
			require.NoError(t, os.WriteFile(p, bytes.Repeat([]byte{'b'}, 4096), 0o644))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStore(t)
			ctx := t.Context()
			_, err := s.Create(ctx, image.Metadata{ID: "img"}, bytes.NewReader(bytes.Repeat([]byte{'a'}, 4096)))
			require.NoError(t, err)
			p, err := s.Path("img")
			require.NoError(t, err)
			tt.damage(t, p)
			rc, err := s.Open(ctx, "img")
			require.NoError(t, err)
			defer rc.Close()
			_, err = io.ReadAll(rc)
			require.ErrorIs(t, err, image.ErrChecksumMismatch)
		})
	}
}

func TestOpenOtherFormat(t *testing.T) {
	s := newStore(t)
	require.NoError(t, os.WriteFile(filepath.Join(s.Dir(), "q.json"), []byte(`{"id":"q","container_format":"bare","disk_format":"qcow2","size":1}`), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(s.Dir(), "q.tar"), []byte("x"), 0o644))
	_, err := s.Open(t.Context(), "q")
	require.ErrorIs(t, err, image.ErrUnsupportedFormat)
}

func TestConcurrentCreateSameID(t *testing.T) {
	s := newStore(t)
	const n = 8
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			_, errs[i] = s.Create(t.Context(), image.Metadata{ID: "same"}, bytes.NewReader(bytes.Repeat([]byte{byte('a' + i)}, 64<<10)))
		})
	}
	wg.Wait()
	won := 0
	for _, err := range errs {
		if err == nil {
			won++
			continue
		}
		assert.ErrorIs(t, err, image.ErrAlreadyExists)
	}
	assert.Equal(t, 1, won)
	assert.ElementsMatch(t, []string{"same.tar", "same.json"}, dirNames(t, s))
	rc, err := s.Open(t.Context(), "same")
	require.NoError(t, err)
	defer rc.Close()
	_, err = io.Copy(io.Discard, rc)
	require.NoError(t, err, "the winner's data and metadata belong together")
}

func TestNewErrors(t *testing.T) {
	_, err := localdir.New("")
	assert.ErrorIs(t, err, image.ErrInvalidArgument)
	f := filepath.Join(t.TempDir(), "file")
	require.NoError(t, os.WriteFile(f, nil, 0o644))
	_, err = localdir.New(filepath.Join(f, "sub"))
	assert.ErrorIs(t, err, image.ErrUnavailable)
	_, err = localdir.New(t.TempDir(), localdir.WithLogger(nil))
	assert.ErrorIs(t, err, image.ErrInvalidArgument)
}

// TestNewRemovesTempFilesOfKilledWriters leaves the temporary file a
// Create whose process was killed leaves, and checks that New removes it,
// but not the temporary file of a Create that is still writing.
func TestNewRemovesTempFilesOfKilledWriters(t *testing.T) {
	dir := t.TempDir()
	s, err := localdir.New(dir, localdir.WithoutSync())
	require.NoError(t, err)
	dead := filepath.Join(dir, ".tmp-0123456789abcdef")
	require.NoError(t, os.WriteFile(dead, []byte("half an image"), 0o644))

	// A Create in progress: its data comes from a pipe that stays open.
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		_, err := s.Create(t.Context(), image.Metadata{ID: "live"}, pr)
		done <- err
	}()
	_, err = pw.Write([]byte("some data"))
	require.NoError(t, err)
	temps := func() []string {
		var out []string
		des, err := os.ReadDir(dir)
		require.NoError(t, err)
		for _, de := range des {
			if strings.HasPrefix(de.Name(), ".tmp-") {
				out = append(out, de.Name())
			}
		}
		return out
	}
	require.Len(t, temps(), 2, "the killed writer's file and the live one's")

	_, err = localdir.New(dir)
	require.NoError(t, err)
	assert.Len(t, temps(), 2, "nothing is removed while a Create writes")

	pw.CloseWithError(io.ErrUnexpectedEOF)
	require.Error(t, <-done)
	_, err = localdir.New(dir)
	require.NoError(t, err)
	assert.Empty(t, temps(), "the killed writer's file is removed once no Create writes")
}
