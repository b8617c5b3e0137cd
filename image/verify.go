package image

import (
	"encoding/hex"
	"fmt"
	"hash"
	"io"
)

// Digest is one checksum to verify: Name labels it in errors, Hash computes
// it, Want is the expected lower-case hex digest.
type Digest struct {
	Name string
	Hash hash.Hash
	Want string
}

// Verify returns a reader over rc that hashes what it reads and, at EOF,
// returns an error wrapping [ErrChecksumMismatch] instead of io.EOF
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
			v.err = fmt.Errorf("%w: read more than the recorded size %d", ErrChecksumMismatch, v.size)
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
		return fmt.Errorf("%w: size %d, want %d", ErrChecksumMismatch, v.n, v.size)
	}
	for _, d := range v.digests {
		if got := hex.EncodeToString(d.Hash.Sum(nil)); got != d.Want {
			return fmt.Errorf("%w: %s %s, want %s", ErrChecksumMismatch, d.Name, got, d.Want)
		}
	}
	return io.EOF
}

func (v *verifier) Close() error { return v.rc.Close() }
