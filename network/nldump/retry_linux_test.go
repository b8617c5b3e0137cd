package nldump

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"
)

func TestRetry(t *testing.T) {
	n := 0
	v, err := Retry(func() (int, error) {
		n++
		if n < 3 {
			return n, netlink.ErrDumpInterrupted
		}
		return n, nil
	})
	require.NoError(t, err)
	assert.Equal(t, 3, v, "interrupted dumps are made again")

	n = 0
	_, err = Retry(func() (int, error) { n++; return n, netlink.ErrDumpInterrupted })
	require.ErrorIs(t, err, netlink.ErrDumpInterrupted)
	assert.Equal(t, Retries, n, "bounded")

	other := errors.New("permission denied")
	n = 0
	_, err = Retry(func() (int, error) { n++; return 0, other })
	require.ErrorIs(t, err, other)
	assert.Equal(t, 1, n, "other errors are not retried")
}
