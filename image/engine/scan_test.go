package engine_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dockervisor/dockervisor/image"
	"github.com/dockervisor/dockervisor/image/engine"
	"github.com/dockervisor/dockervisor/internal/testarchive"
	"github.com/dockervisor/dockervisor/internal/testenv"
)

// seekReader is an unverified, seekable view of an archive that counts
// the bytes read from it.
type seekReader struct {
	*bytes.Reader
	read *atomic.Int64
}

func (s seekReader) Read(p []byte) (int, error) {
	n, err := s.Reader.Read(p)
	s.read.Add(int64(n))
	return n, err
}

func (seekReader) Close() error { return nil }

// seekOpener opens archive as a store's OpenSeeker does: unverified,
// seekable; read counts the bytes read.
func seekOpener(archive []byte, read *atomic.Int64) engine.Opener {
	return func(context.Context) (io.ReadCloser, error) {
		return seekReader{bytes.NewReader(archive), read}, nil
	}
}

// verifiedOpener opens archive verified against the sha256 of want, as
// the Docker backend opens a store image.
func verifiedOpener(archive, want []byte, opens *atomic.Int32) engine.Opener {
	sum := sha256.Sum256(want)
	return func(context.Context) (io.ReadCloser, error) {
		opens.Add(1)
		return image.Verify(io.NopCloser(bytes.NewReader(archive)), int64(len(want)),
			image.Digest{Name: "sha256", Hash: sha256.New(), Want: hex.EncodeToString(sum[:])}), nil
	}
}

// TestLoadFromScanSeeks: with a seekable Scan opener, the first read of an
// OCI layout seeks over the layers instead of reading them, and the image
// loads as from the Opener alone.
func TestLoadFromScanSeeks(t *testing.T) {
	cli := testenv.MustHaveDocker(t)
	testenv.MustHaveSkopeo(t)
	archive, _ := skopeoArchive(t, 4<<20, testarchive.Plain)
	cfg := openLayout(t, archive).configDigest
	tag := newTag()
	removeOnCleanup(t, cli, tag)
	removeOnCleanup(t, cli, "sha256:"+cfg)
	var read atomic.Int64
	var opens atomic.Int32
	id, err := engine.LoadFrom(t.Context(), cli, verifiedOpener(archive, archive, &opens), tag, engine.LoadOptions{Scan: seekOpener(archive, &read)})
	require.NoError(t, err)
	assert.Equal(t, "sha256:"+cfg, id)
	assert.EqualValues(t, 1, opens.Load(), "one verified read")
	assert.Less(t, read.Load(), int64(len(archive)/4), "the scan read %d of %d bytes", read.Load(), len(archive))
}

// TestLoadFromUnverifiedScanRefusesTamperedData: the scan read skips the
// whole-archive checksum, yet data that does not match it is refused with
// image.ErrChecksumMismatch and nothing is left on the engine: a changed
// layer is found by the verified second read before the engine gets
// manifest.json, a change the scan refuses is reported as the mismatch it
// is, before any engine call.
func TestLoadFromUnverifiedScanRefusesTamperedData(t *testing.T) {
	cli := testenv.MustHaveDocker(t)
	testenv.MustHaveSkopeo(t)
	plain, _ := skopeoArchive(t, 1<<20, testarchive.Plain)
	cfg := openLayout(t, plain).configDigest
	layer := func(l *ociLayout) {
		b := bytes.Clone(l.file(t, "blobs/sha256/"+l.layers[1]))
		b[len(b)/2] ^= 0xff
		l.set("blobs/sha256/"+l.layers[1], b)
	}
	version := func(l *ociLayout) { l.set("oci-layout", []byte(`{"imageLayoutVersion":"2.0.0"}`)) }
	for _, tc := range []struct {
		name     string
		edit     func(l *ociLayout)
		streamed bool
	}{
		{"changed layer", layer, true},
		{"changed layout file", version, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := openLayout(t, plain)
			tc.edit(l)
			tampered := l.bytes(t)
			tag := newTag()
			removeOnCleanup(t, cli, tag)
			removeOnCleanup(t, cli, "sha256:"+cfg)
			g := &guardAPI{LoadAPI: cli}
			var read atomic.Int64
			var opens atomic.Int32
			_, err := engine.LoadFrom(t.Context(), g, verifiedOpener(tampered, plain, &opens), tag, engine.LoadOptions{Scan: seekOpener(tampered, &read)})
			require.ErrorIs(t, err, image.ErrChecksumMismatch)
			assert.NotErrorIs(t, err, image.ErrUnsupportedFormat)
			if !tc.streamed {
				assert.Empty(t, g.calls, "refused before any engine call")
			}
			assert.EqualValues(t, 1, opens.Load())
			assertNoImage(t, cli, tag, "sha256:"+cfg)
		})
	}
}
