package docker

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/dockervisor/dockervisor/configdrive"
	"github.com/dockervisor/dockervisor/hypervisor"
	"github.com/dockervisor/dockervisor/internal/statestore"
)

// stateVersion is the schema version of the records in the state
// directory. Adding an omitempty field keeps it; a change that older code
// would misread bumps it (and gives the stores a Migrate function).
const stateVersion = 1

// driverState is a Driver's part of the state directory. Each Driver keeps
// its records under a directory named after its label and name prefixes,
// so that drivers with different prefixes sharing a state directory (as
// they share an engine) never read or remove each other's state:
//
//	<state dir>/drivers/<label prefix>_<name prefix>/instances/<instance ID>.json
//	<state dir>/drivers/<label prefix>_<name prefix>/images/<hash of store ID>.json
//	<state dir>/drivers/<label prefix>_<name prefix>/boot/<instance ID>.json
//	<state dir>/drivers/<label prefix>_<name prefix>/configdrive/<instance ID>/
//
// boot holds an instance's boot data (configdrive.Instance), configdrive
// its config drive tree, bind-mounted into the instance (configdrive.go).
// The label prefix cannot hold '_', so the directory name is unambiguous.
// Both are statestore records (versioned, written atomically).
type driverState struct {
	instances *statestore.Store[instanceRecord]
	images    *statestore.Store[imageRecord]
	boot      *statestore.Store[configdrive.Instance]
	// configDrives holds one config drive tree per instance.
	configDrives string
	// legacyDir is the state directory itself, where earlier versions kept
	// <instance ID>.json for every driver; see load.
	legacyDir string
}

func openDriverState(stateDir, labelPrefix, namePrefix string) (*driverState, error) {
	scope := filepath.Join(stateDir, "drivers", labelPrefix+"_"+namePrefix)
	inst, err := statestore.Open(filepath.Join(scope, "instances"), statestore.Options[instanceRecord]{Version: stateVersion})
	if err != nil {
		return nil, fmt.Errorf("%w: state directory: %w", hypervisor.ErrInvalidArgument, err)
	}
	img, err := statestore.Open(filepath.Join(scope, "images"), statestore.Options[imageRecord]{Version: stateVersion})
	if err != nil {
		return nil, fmt.Errorf("%w: state directory: %w", hypervisor.ErrInvalidArgument, err)
	}
	boot, err := statestore.Open(filepath.Join(scope, "boot"), statestore.Options[configdrive.Instance]{Version: stateVersion})
	if err != nil {
		return nil, fmt.Errorf("%w: state directory: %w", hypervisor.ErrInvalidArgument, err)
	}
	return &driverState{instances: inst, images: img, boot: boot, configDrives: filepath.Join(scope, "configdrive"), legacyDir: stateDir}, nil
}

// load returns the record of instance id; none is the zero record. Callers
// have checked that the instance's container is this driver's, so a record
// in the unscoped layout of earlier versions (<state dir>/<id>.json) is
// this instance's and is read when the scoped one is missing; the next
// save moves it.
func (s *driverState) load(id string) (instanceRecord, error) {
	rec, ok, err := s.instances.Load(id)
	if err != nil || ok {
		return rec, err
	}
	b, err := os.ReadFile(s.legacyPath(id))
	if errors.Is(err, fs.ErrNotExist) {
		return instanceRecord{}, nil
	}
	if err != nil {
		return instanceRecord{}, fmt.Errorf("read instance state: %w", err)
	}
	if err := json.Unmarshal(b, &rec); err != nil {
		return instanceRecord{}, fmt.Errorf("decode instance state %s: %w", s.legacyPath(id), err)
	}
	return rec, nil
}

// save writes the record of instance id, and drops its unscoped record of
// an earlier version, if any.
func (s *driverState) save(id string, rec instanceRecord) error {
	if err := s.instances.Save(id, rec); err != nil {
		return err
	}
	return s.removeLegacy(id)
}

// remove deletes the record of instance id, last, after the instance's
// boot data and config drive: the record is what finds them again, so a
// process killed in the middle leaves the record, and the next removal
// finishes. With owned (the caller saw the instance's container, so the id
// is this driver's) it also deletes the unscoped record of an earlier
// version.
func (s *driverState) remove(id string, owned bool) error {
	if err := s.removeGuest(id); err != nil {
		return err
	}
	err := s.instances.Remove(id)
	if owned {
		err = errors.Join(err, s.removeLegacy(id))
	}
	return err
}

// scopeDir is this driver's directory under the state directory.
func (s *driverState) scopeDir() string { return filepath.Dir(s.instances.Dir()) }

func (s *driverState) legacyPath(id string) string { return filepath.Join(s.legacyDir, id+".json") }

func (s *driverState) removeLegacy(id string) error {
	if err := os.Remove(s.legacyPath(id)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove instance state: %w", err)
	}
	return nil
}

// imageKey is the record key of a store image: store IDs are the store's
// to choose, so the key is a hash of one.
func imageKey(storeID string) string {
	sum := sha256.Sum256([]byte(storeID))
	return hex.EncodeToString(sum[:16])
}

// loadImage returns the record of store image storeID, if there is one.
func (s *driverState) loadImage(storeID string) (imageRecord, bool) {
	r, ok, err := s.images.Load(imageKey(storeID))
	if err != nil || !ok || r.StoreID != storeID {
		return imageRecord{}, false
	}
	return r, true
}

func (s *driverState) saveImage(r imageRecord) error {
	return s.images.Save(imageKey(r.StoreID), r)
}
