package snapshot

import (
	"context"
	"io"
)

// NewReadAheadForTest exposes the read-ahead to the tests.
func NewReadAheadForTest(r io.Reader) io.Reader { return newReadAhead(r, 64<<10, 3) }

// OpenInBackgroundForTest exposes the background open to the tests.
func OpenInBackgroundForTest(ctx context.Context, open func(context.Context) (io.ReadCloser, error)) io.ReadCloser {
	return openInBackground(ctx, open)
}
