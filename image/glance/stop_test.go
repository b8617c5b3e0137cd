package glance_test

import (
	"errors"
	"io"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dockervisor/dockervisor/image"
	"github.com/dockervisor/dockervisor/image/glance"
	"github.com/dockervisor/dockervisor/internal/testarchive"
	"github.com/dockervisor/dockervisor/internal/testenv"
)

// killAfter reads r and, once more than after bytes have been read, calls
// kill (once) before returning the next data.
type killAfter struct {
	r      io.Reader
	after  int64
	n      int64
	kill   func()
	killed atomic.Bool
}

func (k *killAfter) Read(p []byte) (int, error) {
	n, err := k.r.Read(p)
	k.n += int64(n)
	if k.n > k.after && !k.killed.Swap(true) {
		k.kill()
	}
	return n, err
}

// TestGlanceKilledMidDownload kills a real glance-api (an extra one, owned
// by the test) with SIGKILL while Open's stream is being read: the read
// must fail with an error wrapping image.ErrUnavailable, not end cleanly
// and not pass for a checksum mismatch.
func TestGlanceKilledMidDownload(t *testing.T) {
	ep, stop := testenv.StartGlance(t)
	s, err := glance.NewNoAuth(ep)
	require.NoError(t, err)
	ctx := t.Context()
	// Far bigger than the socket buffers, so most of it is still on the
	// server side when it dies.
	spec := testarchive.New(t, 96<<20)
	src := spec.Reader()
	m, err := s.Create(ctx, image.Metadata{Name: "killed-mid-download"}, src)
	src.Close()
	require.NoError(t, err)

	rc, err := s.Open(ctx, m.ID)
	require.NoError(t, err)
	defer rc.Close()
	k := &killAfter{r: rc, after: 1 << 20, kill: stop}
	n, err := io.Copy(io.Discard, k)
	require.True(t, k.killed.Load(), "glance-api was killed during the download")
	require.Error(t, err, "a download cut short must not end cleanly (read %d of %d bytes)", n, m.Size)
	assert.Less(t, n, m.Size)
	assert.ErrorIs(t, err, image.ErrUnavailable)
	assert.False(t, errors.Is(err, image.ErrChecksumMismatch), "a lost connection is not bad data: %v", err)
	t.Logf("read %d of %d bytes: %v", n, m.Size, err)

	// The dead Glance is unavailable for new calls too.
	_, err = s.Stat(ctx, m.ID)
	assert.ErrorIs(t, err, image.ErrUnavailable)
}
