package statestore

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestKeys(t *testing.T) {
	s, err := Open(t.TempDir(), Options[int]{Version: 1})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"b", "a.1", "c-2"} {
		if err := s.Save(k, 1); err != nil {
			t.Fatal(err)
		}
	}
	// A temporary file and a directory are not keys.
	if err := os.WriteFile(filepath.Join(s.Dir(), ".tmp-x.json"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(s.Dir(), "d.json"), 0o700); err != nil {
		t.Fatal(err)
	}
	keys, err := s.Keys()
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(keys)
	if !slices.Equal(keys, []string{"a.1", "b", "c-2"}) {
		t.Fatalf("Keys = %v", keys)
	}
	if err := s.Remove("b"); err != nil {
		t.Fatal(err)
	}
	keys, _ = s.Keys()
	if len(keys) != 2 {
		t.Fatalf("Keys after Remove = %v", keys)
	}
}
