package statestore

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type recV1 struct {
	A string `json:"a"`
}

type recV2 struct {
	A string `json:"a"`
	B int    `json:"b,omitempty"`
}

func TestSaveLoadRemove(t *testing.T) {
	s, err := Open(t.TempDir(), Options[recV1]{Version: 1})
	require.NoError(t, err)
	_, ok, err := s.Load("x")
	require.NoError(t, err)
	assert.False(t, ok)

	require.NoError(t, s.Save("x", recV1{A: "one"}))
	got, ok, err := s.Load("x")
	require.NoError(t, err)
	assert.True(t, ok)
	assert.Equal(t, recV1{A: "one"}, got)

	require.NoError(t, s.Remove("x"))
	require.NoError(t, s.Remove("x"), "removing a missing record succeeds")
	_, ok, err = s.Load("x")
	require.NoError(t, err)
	assert.False(t, ok)
}

func TestVersions(t *testing.T) {
	dir := t.TempDir()
	v1, err := Open(dir, Options[recV1]{Version: 1})
	require.NoError(t, err)
	require.NoError(t, v1.Save("k", recV1{A: "old"}))

	// A newer schema reads the older record, through Migrate when given.
	v2, err := Open(dir, Options[recV2]{Version: 2, Migrate: func(v int, raw json.RawMessage) (recV2, error) {
		var r recV1
		if err := json.Unmarshal(raw, &r); err != nil {
			return recV2{}, err
		}
		return recV2{A: r.A, B: v}, nil
	}})
	require.NoError(t, err)
	got, ok, err := v2.Load("k")
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, recV2{A: "old", B: 1}, got)

	// An older schema refuses a newer record instead of misreading it.
	require.NoError(t, v2.Save("k", recV2{A: "new", B: 7}))
	_, _, err = v1.Load("k")
	require.ErrorIs(t, err, ErrNewerVersion)
}

func TestCorruptAndInvalid(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options[recV1]{Version: 1})
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "bad.json"), []byte("{"), 0o600))
	_, _, err = s.Load("bad")
	require.ErrorIs(t, err, ErrCorrupt)

	require.NoError(t, s.Save("a", recV1{A: "a"}))
	require.NoError(t, os.Rename(filepath.Join(dir, "a.json"), filepath.Join(dir, "b.json")))
	_, _, err = s.Load("b")
	require.ErrorIs(t, err, ErrCorrupt, "a record under another key's name")

	for _, k := range []string{"", "../x", ".hidden", "a/b"} {
		assert.Error(t, s.Save(k, recV1{}), "key %q", k)
	}
	_, err = Open(dir, Options[recV1]{})
	assert.Error(t, err, "version 0")
}
