// Package statestore keeps durable, versioned records: one JSON file per
// key in a directory, each written atomically (see internal/atomicfile), so
// that a crash leaves the old record or the new one, never a part.
//
// A file holds an envelope {"version": N, "key": K, "record": {...}}. A
// record written by a newer schema (a higher version) is refused rather
// than misread; an older one is handed to the store's Migrate function.
package statestore

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"

	"github.com/dockervisor/dockervisor/errclass"
	"github.com/dockervisor/dockervisor/internal/atomicfile"
)

// ErrNewerVersion means a record was written by a newer schema than this
// store knows.
// It is an [errclass.ErrNotSupported].
var ErrNewerVersion = errclass.New("statestore: record written by a newer version", errclass.ErrNotSupported)

// ErrCorrupt means a record file could not be decoded, or holds another
// key. It is an [errclass.ErrCorrupt].
var ErrCorrupt = errclass.New("statestore: corrupt record", errclass.ErrCorrupt)

// validKey is the set of keys: file-name safe, no leading dot (temporary
// files start with one), bounded.
var validKey = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$`)

// Store keeps records of type T under one directory. It is safe for
// concurrent use by keys; callers serialise writes of one key.
type Store[T any] struct {
	dir     string
	version int
	migrate func(version int, raw json.RawMessage) (T, error)
}

// Options configures a Store.
type Options[T any] struct {
	// Version is the schema version written with every record (at least 1).
	Version int
	// Migrate, if not nil, decodes a record of an older version. Without
	// it an older record is decoded as if it were current, which is right
	// while versions only add fields.
	Migrate func(version int, raw json.RawMessage) (T, error)
}

// Open returns a Store in dir, creating dir (mode 0700) if needed.
func Open[T any](dir string, o Options[T]) (*Store[T], error) {
	if o.Version < 1 {
		return nil, fmt.Errorf("statestore: version %d must be at least 1", o.Version)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("statestore: %w", err)
	}
	return &Store[T]{dir: dir, version: o.Version, migrate: o.Migrate}, nil
}

// Dir returns the store's directory.
func (s *Store[T]) Dir() string { return s.dir }

// ValidKey reports whether key can name a record.
func ValidKey(key string) bool { return validKey.MatchString(key) }

func (s *Store[T]) path(key string) (string, error) {
	if !ValidKey(key) {
		return "", fmt.Errorf("statestore: invalid key %q", key)
	}
	return filepath.Join(s.dir, key+".json"), nil
}

type envelope struct {
	Version int             `json:"version"`
	Key     string          `json:"key"`
	Record  json.RawMessage `json:"record"`
}

// Load returns the record of key; ok is false, with a nil error, when there
// is none.
func (s *Store[T]) Load(key string) (rec T, ok bool, err error) {
	p, err := s.path(key)
	if err != nil {
		return rec, false, err
	}
	b, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return rec, false, nil
	}
	if err != nil {
		return rec, false, fmt.Errorf("statestore: %w", err)
	}
	var env envelope
	if err := json.Unmarshal(b, &env); err != nil {
		return rec, false, fmt.Errorf("%w: %s: %w", ErrCorrupt, p, err)
	}
	switch {
	case env.Key != key:
		return rec, false, fmt.Errorf("%w: %s holds key %q", ErrCorrupt, p, env.Key)
	case env.Version > s.version:
		return rec, false, fmt.Errorf("%w: %s is version %d, this store knows %d", ErrNewerVersion, p, env.Version, s.version)
	case env.Version < s.version && s.migrate != nil:
		rec, err = s.migrate(env.Version, env.Record)
		if err != nil {
			return rec, false, fmt.Errorf("statestore: migrate %s from version %d: %w", p, env.Version, err)
		}
		return rec, true, nil
	}
	if err := json.Unmarshal(env.Record, &rec); err != nil {
		return rec, false, fmt.Errorf("%w: %s: %w", ErrCorrupt, p, err)
	}
	return rec, true, nil
}

// Save writes the record of key atomically and durably.
func (s *Store[T]) Save(key string, rec T) error {
	p, err := s.path(key)
	if err != nil {
		return err
	}
	raw, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("statestore: encode %s: %w", key, err)
	}
	b, err := json.Marshal(envelope{Version: s.version, Key: key, Record: raw})
	if err != nil {
		return fmt.Errorf("statestore: encode %s: %w", key, err)
	}
	if err := atomicfile.WriteFile(p, b); err != nil {
		return fmt.Errorf("statestore: write %s: %w", key, err)
	}
	return nil
}

// Remove deletes the record of key; a missing record is not an error.
func (s *Store[T]) Remove(key string) error {
	p, err := s.path(key)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("statestore: %w", err)
	}
	return nil
}
