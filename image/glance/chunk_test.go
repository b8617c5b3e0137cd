package glance

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"testing"
	"testing/iotest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// chunkRecorder notes the size of every Write.
type chunkRecorder struct {
	bytes.Buffer
	sizes []int
}

func (c *chunkRecorder) Write(p []byte) (int, error) {
	c.sizes = append(c.sizes, len(p))
	return c.Buffer.Write(p)
}

// TestChunkedBody: an upload body goes out whole, in writes of
// uploadChunk bytes (the last one shorter), however its source returns
// data; a source error is returned.
func TestChunkedBody(t *testing.T) {
	data := make([]byte, 2*uploadChunk+123)
	_, _ = rand.Read(data)
	var w chunkRecorder
	n, err := io.Copy(&w, chunkedBody{iotest.HalfReader(bytes.NewReader(data))})
	require.NoError(t, err)
	assert.Equal(t, int64(len(data)), n)
	assert.True(t, bytes.Equal(data, w.Bytes()))
	assert.Equal(t, []int{uploadChunk, uploadChunk, 123}, w.sizes)

	boom := errors.New("boom")
	_, err = io.Copy(io.Discard, chunkedBody{io.MultiReader(bytes.NewReader(data[:10]), iotest.ErrReader(boom))})
	assert.ErrorIs(t, err, boom)
}
