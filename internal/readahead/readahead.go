// Package readahead reads a source in a goroutine of its own, ahead of its
// consumer, into a bounded number of fixed chunks: the source's work (a
// file read and a checksum, an engine's stream) and the consumer's (an
// upload, a re-encoding) overlap instead of taking turns, and memory stays
// the same whatever the size.
package readahead

import (
	"io"
	"sync"
)

// Reader reads its source ahead into at most n chunks of size bytes.
type Reader struct {
	ch    chan []byte
	free  chan []byte
	errc  chan error
	cur   []byte // the unread part of chunk
	chunk []byte
	err   error
	done  chan struct{}
	once  sync.Once
}

// New starts reading r into at most n chunks of size bytes. The source's
// error (io.EOF at its end) is returned once the chunks read before it
// have been. Close stops the reading.
func New(r io.Reader, size, n int) *Reader {
	ra := &Reader{ch: make(chan []byte, n), free: make(chan []byte, n), errc: make(chan error, 1), done: make(chan struct{})}
	for range n {
		ra.free <- make([]byte, size)
	}
	go func() {
		defer close(ra.ch)
		for {
			var buf []byte
			select {
			case buf = <-ra.free:
			case <-ra.done:
				return
			}
			k, err := io.ReadFull(r, buf[:cap(buf)])
			if k > 0 {
				select {
				case ra.ch <- buf[:k]:
				case <-ra.done:
					return
				}
			}
			if err != nil {
				if err == io.ErrUnexpectedEOF {
					err = io.EOF
				}
				ra.errc <- err
				return
			}
		}
	}()
	return ra
}

// Read reads what the goroutine read ahead.
func (ra *Reader) Read(p []byte) (int, error) {
	for len(ra.cur) == 0 {
		if ra.err != nil {
			return 0, ra.err
		}
		buf, ok := <-ra.ch
		if !ok {
			select {
			case ra.err = <-ra.errc:
			default:
				ra.err = io.ErrClosedPipe // stopped by Close
			}
			continue
		}
		ra.cur, ra.chunk = buf, buf
	}
	n := copy(p, ra.cur)
	ra.cur = ra.cur[n:]
	if len(ra.cur) == 0 {
		// The chunk is consumed: give it back (its full capacity).
		select {
		case ra.free <- ra.chunk[:cap(ra.chunk)]:
		default:
		}
	}
	return n, nil
}

// Close stops the reading goroutine once its read in progress returns; it
// does not close the source (close it to end a read that would block).
func (ra *Reader) Close() error {
	ra.once.Do(func() { close(ra.done) })
	return nil
}
