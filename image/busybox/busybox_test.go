package busybox_test

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dockervisor/dockervisor/image/busybox"
	"github.com/dockervisor/dockervisor/internal/testenv"
)

func TestRootfs(t *testing.T) {
	if _, err := os.Stat(busybox.Path); err != nil {
		testenv.Missing(t, "busybox-static: %v", err)
	}
	b, err := busybox.Rootfs()
	require.NoError(t, err)
	tr := tar.NewReader(bytes.NewReader(b))
	links := map[string]string{}
	var sawBinary bool
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		switch {
		case h.Name == "bin/busybox":
			sawBinary = h.Mode&0o111 != 0 && h.Size > 0
		case h.Typeflag == tar.TypeSymlink:
			links[h.Name] = h.Linkname
		}
	}
	assert.True(t, sawBinary, "an executable bin/busybox")
	for _, a := range busybox.Applets {
		assert.Equal(t, "busybox", links["bin/"+a], "applet %s", a)
	}
}

func TestDrainJSONStream(t *testing.T) {
	require.NoError(t, busybox.DrainJSONStream(strings.NewReader(`{"status":"a"}{"stream":"b"}`)))
	err := busybox.DrainJSONStream(strings.NewReader(`{"status":"a"}{"error":"no space"}`))
	require.ErrorIs(t, err, busybox.ErrEngine)
	assert.ErrorContains(t, err, "no space")
	assert.Error(t, busybox.DrainJSONStream(strings.NewReader(`{"status":`)))
}
