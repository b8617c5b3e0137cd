package stream

import (
	"bytes"
	"context"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	r := WithContext(ctx, bytes.NewReader(make([]byte, 10)))
	_, err := r.Read(make([]byte, 5))
	require.NoError(t, err)
	cancel()
	_, err = r.Read(make([]byte, 5))
	require.ErrorIs(t, err, context.Canceled)
}
