package docker

import (
	"bufio"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestFollowFile checks the LXC peer's console follower: it waits for a
// file that does not exist yet, reads lines as they are appended, and
// ends with the context's error.
func TestFollowFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "console.log")
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	ff := &followFile{ctx: ctx, path: path}
	defer ff.close()
	written := make(chan error, 1)
	go func() {
		time.Sleep(20 * time.Millisecond)
		f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			written <- err
			return
		}
		defer f.Close()
		for _, s := range []string{"first ", "line\r\n", "second line\r\n"} {
			if _, err := f.WriteString(s); err != nil {
				written <- err
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
		written <- nil
	}()
	br := bufio.NewReader(ff)
	line, err := br.ReadBytes('\n')
	require.NoError(t, err)
	require.Equal(t, "first line\r\n", string(line))
	line, err = br.ReadBytes('\n')
	require.NoError(t, err)
	require.Equal(t, "second line\r\n", string(line))
	require.NoError(t, <-written)
	cancel()
	_, err = br.ReadBytes('\n')
	require.ErrorIs(t, err, context.Canceled)
}
