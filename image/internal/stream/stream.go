// Package stream holds the streaming helpers shared by the image stores:
// a reader that verifies digests at EOF and a reader that stops when its
// context ends.
package stream

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"hash"
	"io"

	"github.com/dockervisor/dockervisor/image"
)

// Digest is one checksum to verify: Name labels it in errors, Hash computes
// it, Want is the expected lower-case hex digest.
type Digest struct {
	Name string
	Hash hash.Hash
	Want string
}

// Verify returns a reader over rc that hashes what it reads and, at EOF,
// returns an error wrapping [image.ErrChecksumMismatch] instead of io.EOF
// when the size (if size >= 0) or any digest differs. Digests with an
// empty Want are skipped. Closing it closes rc.
func Verify(rc io.ReadCloser, size int64, digests ...Digest) io.ReadCloser {
	v := &verifier{rc: rc, size: size}
	for _, d := range digests {
		if d.Want != "" && d.Hash != nil {
			v.digests = append(v.digests, d)
		}
	}
	return v
}

type verifier struct {
	rc      io.ReadCloser
	size    int64
	n       int64
	digests []Digest
	err     error // sticky result once EOF was seen
}

func (v *verifier) Read(p []byte) (int, error) {
	if v.err != nil {
		return 0, v.err
	}
	n, err := v.rc.Read(p)
	if n > 0 {
		v.n += int64(n)
		for _, d := range v.digests {
			d.Hash.Write(p[:n])
		}
		if v.size >= 0 && v.n > v.size {
			v.err = fmt.Errorf("%w: read more than the recorded size %d", image.ErrChecksumMismatch, v.size)
			return n, v.err
		}
	}
	if err == io.EOF {
		v.err = v.check()
		return n, v.err
	}
	return n, err
}

func (v *verifier) check() error {
	if v.size >= 0 && v.n != v.size {
		return fmt.Errorf("%w: size %d, want %d", image.ErrChecksumMismatch, v.n, v.size)
	}
	for _, d := range v.digests {
		if got := hex.EncodeToString(d.Hash.Sum(nil)); got != d.Want {
			return fmt.Errorf("%w: %s %s, want %s", image.ErrChecksumMismatch, d.Name, got, d.Want)
		}
	}
	return io.EOF
}

func (v *verifier) Close() error { return v.rc.Close() }

// WithContext returns a reader over r whose Read fails with ctx's error
// once ctx is done.
func WithContext(ctx context.Context, r io.Reader) io.Reader { return &ctxReader{ctx: ctx, r: r} }

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, context.Cause(c.ctx)
	}
	return c.r.Read(p)
}

// NewUUID returns a random (version 4) UUID string.
func NewUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}
