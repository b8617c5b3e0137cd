package kmod

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeRoot makes a file system root with a loaded module, a built-in one
// and an installed one for the running kernel, and points the package at
// it for the test.
func fakeRoot(t *testing.T) {
	t.Helper()
	rel, err := release()
	require.NoError(t, err)
	dir := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "sys/module/br_netfilter"), 0o755))
	mods := filepath.Join(dir, "lib/modules", rel)
	require.NoError(t, os.MkdirAll(mods, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(mods, "modules.builtin"), []byte("kernel/net/bridge/bridge.ko\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(mods, "modules.dep"), []byte(
		"kernel/net/8021q/8021q.ko: kernel/net/802/garp.ko kernel/net/802/mrp.ko\n"+
			"kernel/net/openvswitch/openvswitch.ko.xz: kernel/net/nsh/nsh.ko.xz\n"+
			"kernel/drivers/net/dummy.ko:\n"), 0o644))
	old := root
	root = dir
	t.Cleanup(func() { root = old })
}

func TestPresent(t *testing.T) {
	fakeRoot(t)
	for name, want := range map[string]bool{
		"br_netfilter": true, // loaded
		"br-netfilter": true, // the kernel's dash-underscore equivalence
		"bridge":       true, // built in
		"8021q":        true, // installed
		"openvswitch":  true, // installed, compressed
		"dummy":        true, // installed, no dependencies
		"garp":         false,
		"vlan":         false,
		"nsh.ko":       false,
	} {
		assert.Equal(t, want, Present(name), name)
	}
	assert.True(t, Loaded("br_netfilter"))
	assert.False(t, Loaded("8021q"), "installed is not loaded")
}

func TestMissingModuleFiles(t *testing.T) {
	old := root
	root = t.TempDir()
	t.Cleanup(func() { root = old })
	assert.False(t, Present("8021q"))
	assert.False(t, Loaded("8021q"))
}
