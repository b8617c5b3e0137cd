package docker

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/dockervisor/dockervisor/hypervisor"
)

// instanceState is the mutable state of an instance, kept in the state
// directory as <id>.json so that it survives an agent restart. The
// spawn-time spec lives in container labels instead.
type instanceState struct {
	ID string `json:"id"`
	// SoftDeleted marks a soft-deleted instance.
	SoftDeleted bool `json:"soft_deleted,omitempty"`
	// PoweredOff records that the driver stopped the instance on purpose,
	// so that its exit is a shutdown, not a crash.
	PoweredOff bool `json:"powered_off,omitempty"`
	// Metadata replaces the spawn-time metadata once MetadataSet (by
	// UpdateMetadata).
	Metadata    map[string]string `json:"metadata,omitempty"`
	MetadataSet bool              `json:"metadata_set,omitempty"`
}

// stateStore reads and writes instance state files atomically.
type stateStore struct{ dir string }

func newStateStore(dir string) (*stateStore, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("%w: state directory: %w", hypervisor.ErrInvalidArgument, err)
	}
	return &stateStore{dir: dir}, nil
}

func (s *stateStore) path(id string) string { return filepath.Join(s.dir, id+".json") }

// load returns the state of id; a missing file is the zero state.
func (s *stateStore) load(id string) (instanceState, error) {
	b, err := os.ReadFile(s.path(id))
	if errors.Is(err, fs.ErrNotExist) {
		return instanceState{ID: id}, nil
	}
	if err != nil {
		return instanceState{}, fmt.Errorf("read instance state: %w", err)
	}
	var st instanceState
	if err := json.Unmarshal(b, &st); err != nil {
		return instanceState{}, fmt.Errorf("decode instance state %s: %w", s.path(id), err)
	}
	st.ID = id
	return st, nil
}

// save writes st atomically.
func (s *stateStore) save(st instanceState) error {
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	if err := writeFileAtomic(s.path(st.ID), b); err != nil {
		return fmt.Errorf("write instance state: %w", err)
	}
	return nil
}

// writeFileAtomic writes b to path through a temporary file in the same
// directory: write, fsync, rename, fsync of the directory. Readers see the
// old content or the new, never a part.
func writeFileAtomic(path string, b []byte) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, werr := f.Write(b)
	serr := f.Sync()
	cerr := f.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return syncDir(dir)
}

// remove deletes the state of id; a missing file is not an error.
func (s *stateStore) remove(id string) error {
	if err := os.Remove(s.path(id)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove instance state: %w", err)
	}
	if err := os.RemoveAll(filepath.Join(s.dir, id+".guest")); err != nil {
		return fmt.Errorf("remove instance guest data: %w", err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
