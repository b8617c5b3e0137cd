package atomicfile

import (
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestWriteFileReplacesAndLeavesNoTemporary(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "x.json")
	require.NoError(t, WriteFile(p, []byte("one")))
	require.NoError(t, WriteFile(p, []byte("two")))
	b, err := os.ReadFile(p)
	require.NoError(t, err)
	assert.Equal(t, "two", string(b))
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Len(t, entries, 1, "only the target is left")
}

func TestRemoveDiscardsUncommitted(t *testing.T) {
	dir := t.TempDir()
	f, err := Create(dir, ".tmp-", 0o600, false)
	require.NoError(t, err)
	_, err = f.WriteString("partial")
	require.NoError(t, err)
	f.Remove()
	f.Remove() // idempotent
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Empty(t, entries)
}

func TestLinkNeverReplaces(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "data")
	require.NoError(t, os.WriteFile(p, []byte("old"), 0o600))
	f, err := Create(dir, ".tmp-", 0o600, true)
	require.NoError(t, err)
	defer f.Remove()
	_, err = f.WriteString("new")
	require.NoError(t, err)
	require.ErrorIs(t, f.Link(p), fs.ErrExist)
	b, err := os.ReadFile(p)
	require.NoError(t, err)
	assert.Equal(t, "old", string(b))

	q := filepath.Join(dir, "data2")
	require.NoError(t, f.Link(q))
	f.Remove()
	b, err = os.ReadFile(q)
	require.NoError(t, err)
	assert.Equal(t, "new", string(b))
}
