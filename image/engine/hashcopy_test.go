package engine

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"io"
	"testing"
	"testing/iotest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestHashedCopy: the copy is exact and its hash right, over several
// chunks and through one-byte reads; one copier serves copy after copy.
func TestHashedCopy(t *testing.T) {
	c := newHashedCopier()
	for _, n := range []int{0, 1, hashChunk, 3*hashChunk + 17, 9 * hashChunk} {
		data := make([]byte, n+100) // more than copied: the rest stays
		_, _ = rand.Read(data)
		for _, oneByte := range []bool{false, true} {
			var src io.Reader = bytes.NewReader(data)
			if oneByte {
				src = iotest.OneByteReader(src)
			}
			var out bytes.Buffer
			sum, err := c.copy(&out, src, int64(n))
			require.NoError(t, err)
			want := sha256.Sum256(data[:n])
			assert.Equal(t, want[:], sum, "n=%d", n)
			assert.True(t, bytes.Equal(data[:n], out.Bytes()), "n=%d: the data", n)
		}
	}
}

// TestHashedCopyErrors: a short source is io.ErrUnexpectedEOF, a source
// or writer error is returned, and the copier stays usable after each.
func TestHashedCopyErrors(t *testing.T) {
	c := newHashedCopier()
	_, err := c.copy(io.Discard, bytes.NewReader(make([]byte, 10)), 11)
	assert.ErrorIs(t, err, io.ErrUnexpectedEOF)

	boom := errors.New("boom")
	_, err = c.copy(io.Discard, io.MultiReader(bytes.NewReader(make([]byte, hashChunk+1)), iotest.ErrReader(boom)), 2*hashChunk)
	assert.ErrorIs(t, err, boom)

	_, err = c.copy(failWriter{boom}, bytes.NewReader(make([]byte, 3*hashChunk)), 3*hashChunk)
	assert.ErrorIs(t, err, boom)

	sum, err := c.copy(io.Discard, bytes.NewReader([]byte("abc")), 3)
	require.NoError(t, err)
	want := sha256.Sum256([]byte("abc"))
	assert.Equal(t, want[:], sum, "all buffers came back")
}

type failWriter struct{ err error }

func (w failWriter) Write([]byte) (int, error) { return 0, w.err }
