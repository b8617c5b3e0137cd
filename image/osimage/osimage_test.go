package osimage_test

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dockervisor/dockervisor/image/osimage"
	"github.com/dockervisor/dockervisor/internal/testenv"
)

func TestHashIsStableAndShapedByContent(t *testing.T) {
	base, err := osimage.Options{}.Hash()
	require.NoError(t, err)
	same, err := osimage.Options{Suite: osimage.DefaultSuite, Mirror: osimage.DefaultMirror, CacheDir: "/elsewhere", WorkDir: "/tmp/x"}.Hash()
	require.NoError(t, err)
	assert.Equal(t, base, same, "defaults spelled out, cache and work directories do not change the image")

	a, err := osimage.Options{Packages: []string{"less", "curl", "less"}}.Hash()
	require.NoError(t, err)
	b, err := osimage.Options{Packages: []string{"curl", "less"}}.Hash()
	require.NoError(t, err)
	assert.Equal(t, a, b, "package order and duplicates do not matter")
	assert.NotEqual(t, base, a)

	c, err := osimage.Options{Suite: "trixie"}.Hash()
	require.NoError(t, err)
	assert.NotEqual(t, base, c)

	ref, err := osimage.Options{Repository: "lab/os"}.Ref()
	require.NoError(t, err)
	assert.Equal(t, "lab/os:"+base, ref)
}

func TestInvalidOptions(t *testing.T) {
	for _, o := range []osimage.Options{
		{Suite: "Bookworm; rm -rf /"},
		{Mirror: "ftp://example"},
		{Repository: "UPPER/case"},
		{Packages: []string{"--option"}},
		{Packages: []string{"a b"}},
	} {
		_, err := o.Hash()
		assert.ErrorIs(t, err, osimage.ErrInvalidOptions, "%+v", o)
		_, err = osimage.Build(t.Context(), nil, o)
		assert.ErrorIs(t, err, osimage.ErrInvalidOptions, "%+v", o)
	}
}

// TestBuildIsCached builds the shared OS image (or finds it) and builds it
// again: the second Build finds it by its input hash and does nothing.
func TestBuildIsCached(t *testing.T) {
	first := testenv.OSImage(t)
	cli := testenv.MustHaveDocker(t)
	img, err := cli.ImageInspect(t.Context(), first.Ref)
	require.NoError(t, err)
	assert.Equal(t, first.Hash, img.Config.Labels[osimage.LabelHash])
	assert.Equal(t, "systemd", img.Config.Labels[osimage.LabelOS])
	assert.Equal(t, osimage.BootReportConsole, img.Config.Labels[osimage.LabelBootReport])
	assert.Equal(t, []string{"/sbin/init"}, []string(img.Config.Cmd))

	again, err := osimage.Build(t.Context(), cli, testenv.OSImageOptions)
	require.NoError(t, err)
	assert.True(t, again.Cached)
	assert.Equal(t, first.ImageID, again.ImageID)
	assert.Equal(t, first.Ref, again.Ref)
	t.Logf("first: cached=%v in %v; second: %v", first.Cached, first.Duration, again.Duration)
}

// TestBuildFailsCleanly runs a build that debootstrap cannot do (an
// unknown suite from a mirror that has none): a typed error and no work
// directory left.
func TestBuildFailsCleanly(t *testing.T) {
	cli := testenv.MustHaveDocker(t)
	work := t.TempDir()
	_, err := osimage.Build(t.Context(), cli, osimage.Options{
		Suite: "no-such-suite", Mirror: "file:///nonexistent", Repository: "dockervisor-test/os-fail",
		CacheDir: t.TempDir(), WorkDir: work,
	})
	require.Error(t, err)
	assert.True(t, errors.Is(err, osimage.ErrBuild), "%v", err)
	entries, rerr := readDir(work)
	require.NoError(t, rerr)
	assert.Empty(t, entries, "the temporary root file system is removed")
}
