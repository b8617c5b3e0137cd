package snapshot

import "io"

// NewReadAheadForTest exposes the read-ahead to the tests.
func NewReadAheadForTest(r io.Reader) io.Reader { return newReadAhead(r, 64<<10, 3) }
