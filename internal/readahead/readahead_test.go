package readahead_test

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"testing"
	"testing/iotest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dockervisor/dockervisor/internal/readahead"
)

// TestStream: the data arrives whole and in order through one-byte and
// half reads, with chunks smaller than the data.
func TestStream(t *testing.T) {
	data := make([]byte, 5<<20+123)
	_, _ = rand.Read(data)
	require.NoError(t, iotest.TestReader(readahead.New(bytes.NewReader(data), 64<<10, 3), data))
}

// TestSourceError: the source's error comes after the data read before it.
func TestSourceError(t *testing.T) {
	boom := errors.New("boom")
	r := readahead.New(io.MultiReader(bytes.NewReader([]byte("abc")), iotest.ErrReader(boom)), 2, 2)
	defer r.Close()
	b, err := io.ReadAll(r)
	assert.Equal(t, "abc", string(b))
	assert.ErrorIs(t, err, boom)
}

// TestClose: after Close the goroutine stops reading an endless source,
// and reads end with an error once the chunks read before are consumed.
func TestClose(t *testing.T) {
	r := readahead.New(endless{}, 4, 2)
	p := make([]byte, 4)
	_, err := io.ReadFull(r, p)
	require.NoError(t, err)
	require.NoError(t, r.Close())
	_, err = io.ReadAll(r)
	assert.ErrorIs(t, err, io.ErrClosedPipe)
}

type endless struct{}

func (endless) Read(p []byte) (int, error) { return len(p), nil }
