package localdir_test

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dockervisor/dockervisor/image"
)

// TestOpenSeeker: the data opens for random access, unverified; a missing
// image or ID, another container format and a done context are
// refused as by Open.
func TestOpenSeeker(t *testing.T) {
	s := newStore(t)
	ctx := t.Context()
	data := bytes.Repeat([]byte("0123456789"), 10000)
	m, err := s.Create(ctx, image.Metadata{}, bytes.NewReader(data))
	require.NoError(t, err)

	rc, err := s.OpenSeeker(ctx, m.ID)
	require.NoError(t, err)
	_, err = rc.Seek(50003, io.SeekStart)
	require.NoError(t, err)
	b := make([]byte, 4)
	_, err = io.ReadFull(rc, b)
	require.NoError(t, err)
	require.Equal(t, "3456", string(b))
	require.NoError(t, rc.Close())

	// Unverified: a changed data file reads as it is (Open refuses it).
	p, err := s.Path(m.ID)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(p, []byte("changed"), 0o644))
	rc, err = s.OpenSeeker(ctx, m.ID)
	require.NoError(t, err)
	got, err := io.ReadAll(rc)
	require.NoError(t, err)
	require.Equal(t, "changed", string(got))
	require.NoError(t, rc.Close())

	_, err = s.OpenSeeker(ctx, "missing")
	require.ErrorIs(t, err, image.ErrNotFound)
	_, err = s.OpenSeeker(ctx, "../x")
	require.ErrorIs(t, err, image.ErrInvalidArgument)
	require.NoError(t, os.WriteFile(filepath.Join(s.Dir(), "q.json"), []byte(`{"id":"q","container_format":"bare","disk_format":"qcow2","size":1}`), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(s.Dir(), "q.tar"), []byte("x"), 0o644))
	_, err = s.OpenSeeker(ctx, "q")
	require.ErrorIs(t, err, image.ErrUnsupportedFormat)

	done, cancel := context.WithCancel(ctx)
	rc, err = s.OpenSeeker(done, m.ID)
	require.NoError(t, err)
	defer rc.Close()
	cancel()
	_, err = rc.Seek(0, io.SeekStart)
	require.ErrorIs(t, err, context.Canceled)
	_, err = rc.Read(b)
	require.ErrorIs(t, err, context.Canceled)
}
