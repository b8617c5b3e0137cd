package statestore

import (
	"fmt"
	"os"
	"strings"
)

// Keys returns the keys of every record in the store, in directory order.
// Temporary files of writes in progress are not keys.
func (s *Store[T]) Keys() ([]string, error) {
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("statestore: %w", err)
	}
	keys := make([]string, 0, len(ents))
	for _, e := range ents {
		name, ok := strings.CutSuffix(e.Name(), ".json")
		if ok && !e.IsDir() && ValidKey(name) {
			keys = append(keys, name)
		}
	}
	return keys, nil
}
