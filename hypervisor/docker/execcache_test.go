package docker

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// statFake answers ContainerStatPath from a file table and counts the
// calls; fail, if set, is every call's error. ContainerInspect gives a
// container the image images names, or "sha256:" and the part of its ID
// after the dash.
type statFake struct {
	files       map[string]container.PathStat
	images      map[string]string
	fail        error
	inspectFail bool
	calls       int
}

func (f *statFake) ContainerInspect(_ context.Context, id string, _ client.ContainerInspectOptions) (client.ContainerInspectResult, error) {
	if f.inspectFail {
		return client.ContainerInspectResult{}, notFoundErr{id}
	}
	img, ok := f.images[id]
	if !ok {
		_, img, _ = strings.Cut(id, "-")
		img = "sha256:" + img
	}
	return client.ContainerInspectResult{Container: container.InspectResponse{ID: id, Image: img}}, nil
}

func (f *statFake) ContainerStatPath(_ context.Context, _ string, o client.ContainerStatPathOptions) (client.ContainerStatPathResult, error) {
	f.calls++
	if f.fail != nil {
		return client.ContainerStatPathResult{}, f.fail
	}
	st, ok := f.files[o.Path]
	if !ok {
		return client.ContainerStatPathResult{}, notFoundErr{o.Path}
	}
	return client.ContainerStatPathResult{Stat: st}, nil
}

// notFoundErr is an engine's not-found answer.
type notFoundErr struct{ path string }

func (e notFoundErr) Error() string { return "no such file: " + e.path }
func (notFoundErr) NotFound()       {}

// TestExecutableCache checks that an image's answer is asked once per path,
// that an unknown image (no ID) and an engine error are not remembered,
// that a missing init is remembered as such, and that the cache empties
// when full.
func TestExecutableCache(t *testing.T) {
	ctx := t.Context()
	f := &statFake{files: map[string]container.PathStat{
		"/sbin/init":           {Mode: fs.ModeSymlink | 0o777, LinkTarget: "../lib/systemd/systemd"},
		"/lib/systemd/systemd": {Mode: 0o755},
	}}
	var c executableCache

	problem, err := c.check(ctx, f, "sha256:a", "c1-a", "/sbin/init")
	require.NoError(t, err)
	assert.Empty(t, problem)
	assert.Equal(t, 2, f.calls, "the link and its target")
	problem, err = c.check(ctx, f, "sha256:a", "c2-a", "/sbin/init")
	require.NoError(t, err)
	assert.Empty(t, problem)
	assert.Equal(t, 2, f.calls, "the same image's answer is remembered")

	// Another path, another image, no image ID: asked.
	problem, err = c.check(ctx, f, "sha256:a", "c3-a", "/bin/sh")
	require.NoError(t, err)
	assert.Equal(t, "does not exist in the image", problem)
	assert.Equal(t, 3, f.calls)
	problem, err = c.check(ctx, f, "sha256:a", "c4-a", "/bin/sh")
	require.NoError(t, err)
	assert.Equal(t, "does not exist in the image", problem, "a missing file is remembered too")
	assert.Equal(t, 3, f.calls)
	_, err = c.check(ctx, f, "sha256:b", "c5-b", "/sbin/init")
	require.NoError(t, err)
	assert.Equal(t, 5, f.calls)
	for range 2 {
		_, err = c.check(ctx, f, "", "c6-a", "/sbin/init")
		require.NoError(t, err)
	}
	assert.Equal(t, 9, f.calls, "without an image ID every check asks")

	// An engine error is returned and not kept.
	f.fail = errors.New("engine down")
	_, err = c.check(ctx, f, "sha256:c", "c7-c", "/sbin/init")
	require.Error(t, err)
	f.fail = nil
	problem, err = c.check(ctx, f, "sha256:c", "c7-c", "/sbin/init")
	require.NoError(t, err)
	assert.Empty(t, problem)
	assert.Equal(t, 12, f.calls)

	// Full: emptied, then filled again.
	for i := range maxExecutableCache {
		c.mu.Lock()
		c.m[executableKey{fmt.Sprint("sha256:x", i), "/sbin/init"}] = ""
		c.mu.Unlock()
	}
	before := f.calls
	_, err = c.check(ctx, f, "sha256:new", "c8-new", "/sbin/init")
	require.NoError(t, err)
	c.mu.Lock()
	n := len(c.m)
	c.mu.Unlock()
	assert.Equal(t, 1, n, "the full cache was emptied for the new entry")
	_, err = c.check(ctx, f, "sha256:a", "c9-a", "/sbin/init")
	require.NoError(t, err)
	assert.Equal(t, before+4, f.calls, "the emptied entries are asked again")

	// A tag moved between the spawn's inspect (sha256:m) and the create
	// (sha256:n): the answer is kept under the container's image.
	f.files["/sbin/init"] = container.PathStat{Mode: 0o644}
	before = f.calls
	problem, err = c.check(ctx, f, "sha256:m", "c10-n", "/sbin/init")
	require.NoError(t, err)
	assert.Equal(t, "is not executable", problem)
	problem, err = c.check(ctx, f, "sha256:n", "c11-n", "/sbin/init")
	require.NoError(t, err)
	assert.Equal(t, "is not executable", problem)
	assert.Equal(t, before+1, f.calls, "kept under the container's image")
	f.files["/sbin/init"] = container.PathStat{Mode: 0o755}
	problem, err = c.check(ctx, f, "sha256:m", "c12-m", "/sbin/init")
	require.NoError(t, err)
	assert.Empty(t, problem, "not kept under the image the spawn inspected")

	// The container's image cannot be learnt: the answer stands, unkept.
	f.inspectFail = true
	before = f.calls
	for range 2 {
		problem, err = c.check(ctx, f, "sha256:p", "c13-p", "/lib/systemd/systemd")
		require.NoError(t, err)
		assert.Empty(t, problem)
	}
	assert.Equal(t, before+2, f.calls, "an answer whose image is unknown is not kept")
}

// TestInitCacheKey: an init under a mount of the container (the Driver's,
// the engine's own files) is the instance's, not the image's, and is not
// kept by image.
func TestInitCacheKey(t *testing.T) {
	mounts := []string{"/var/lib/cloud/seed/config_drive", "/run", "/run/lock/"}
	for p, want := range map[string]string{
		"/sbin/init":                          "sha256:a",
		"/lib/systemd/systemd":                "sha256:a",
		"/run/init":                           "",
		"/run":                                "",
		"/running/init":                       "sha256:a",
		"/run/lock/x":                         "",
		"/var/lib/cloud/seed/config_drive/x":  "",
		"/var/lib/cloud/seed/config_drive2/x": "sha256:a",
		"/etc/hosts":                          "",
		"/etc/hostsfile":                      "sha256:a",
		"/etc/resolv.conf":                    "",
	} {
		assert.Equal(t, want, initCacheKey("sha256:a", p, mounts), p)
	}
	assert.Equal(t, "", initCacheKey("", "/sbin/init", nil))
}
