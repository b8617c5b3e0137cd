package engine

import (
	"crypto/sha256"
	"io"
)

// Chunks of a hashed copy: the hash of one chunk runs while the next is
// read and the chunk itself is written.
const (
	hashChunk  = 256 << 10
	hashChunks = 4
)

// hashedCopier copies data and hashes it in a goroutine of its own, so
// that the hashing takes a second core instead of lengthening the copy.
// Its buffers are reused from one copy to the next.
type hashedCopier struct {
	free chan []byte
}

func newHashedCopier() *hashedCopier {
	c := &hashedCopier{free: make(chan []byte, hashChunks)}
	for range hashChunks {
		c.free <- make([]byte, hashChunk)
	}
	return c
}

// copy copies exactly n bytes from r to w and returns their sha256. A
// short source is io.ErrUnexpectedEOF. Each chunk is handed to the hashing
// goroutine before it is written: both only read it, and it is read into
// again only once both are done with it.
func (c *hashedCopier) copy(w io.Writer, r io.Reader, n int64) ([]byte, error) {
	h := sha256.New()
	work := make(chan []byte, hashChunks)
	hashed := make(chan struct{})
	go func() {
		defer close(hashed)
		for b := range work {
			h.Write(b)
			c.free <- b[:cap(b)]
		}
	}()
	var err error
	for n > 0 && err == nil {
		b := <-c.free
		k, rerr := io.ReadFull(r, b[:min(int64(len(b)), n)])
		n -= int64(k)
		work <- b[:k]
		if k > 0 {
			_, err = w.Write(b[:k])
		}
		if err == nil && rerr != nil {
			if rerr == io.EOF {
				rerr = io.ErrUnexpectedEOF
			}
			err = rerr
		}
	}
	close(work)
	<-hashed
	if err != nil {
		return nil, err
	}
	return h.Sum(nil), nil
}
