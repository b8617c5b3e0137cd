package stream

import (
	"bytes"
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
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

func TestNewUUID(t *testing.T) {
	u := NewUUID()
	assert.Regexp(t, `^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`, u)
	assert.NotEqual(t, u, NewUUID())
}
