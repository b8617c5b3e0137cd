package image_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dockervisor/dockervisor/image"
)

func TestVerify(t *testing.T) {
	data := []byte("docker archive bytes")
	sum := sha256.Sum256(data)
	good := hex.EncodeToString(sum[:])
	tests := []struct {
		name string
		data []byte
		size int64
		want string
		err  error
	}{
		{"match", data, int64(len(data)), good, nil},
		{"unknown size", data, -1, good, nil},
		{"no digest", data, int64(len(data)), "", nil},
		{"short", data[:5], int64(len(data)), good, image.ErrChecksumMismatch},
		{"long", append(bytes.Clone(data), 'x'), int64(len(data)), good, image.ErrChecksumMismatch},
		{"other bytes", bytes.ToUpper(data), int64(len(data)), good, image.ErrChecksumMismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rc := image.Verify(io.NopCloser(bytes.NewReader(tt.data)), tt.size, image.Digest{Name: "sha256", Hash: sha256.New(), Want: tt.want})
			got, err := io.ReadAll(rc)
			if tt.err == nil {
				require.NoError(t, err)
				assert.Equal(t, tt.data, got)
				return
			}
			require.ErrorIs(t, err, tt.err)
			_, err = rc.Read(make([]byte, 1))
			require.ErrorIs(t, err, tt.err, "the result is sticky")
		})
	}
}
