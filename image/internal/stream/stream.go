// Package stream holds the streaming helpers shared by the image stores:
// a reader that stops when its context ends, and ID generation.
package stream

import (
	"context"
	"io"
)

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
