package snapshot

import (
	"context"
	"io"
)

// OpenInBackgroundForTest exposes the background open to the tests.
func OpenInBackgroundForTest(ctx context.Context, open func(context.Context) (io.ReadCloser, error)) io.ReadCloser {
	return openInBackground(ctx, open)
}
