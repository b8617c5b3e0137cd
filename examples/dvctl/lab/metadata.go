package lab

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"sync"

	"github.com/dockervisor/dockervisor/configdrive"
	"github.com/dockervisor/dockervisor/network/metadata"
)

// metadataSocket is the control socket of a lab's metadata service.
func metadataSocket(dir string) string { return filepath.Join(dir, "control.sock") }

// MetadataRouter is the metadata service a Driver driving lab instances
// is given (docker.WithMetadataService): it publishes the boot data of a
// lab's instance to that lab's metadata service, and ignores instances of
// labs without one and of no lab.
type MetadataRouter struct {
	stateDir string
	mu       sync.Mutex
	clients  map[string]*metadata.Client
}

// NewMetadataRouter returns a MetadataRouter over the lab state files in
// stateDir.
func NewMetadataRouter(stateDir string) *MetadataRouter {
	return &MetadataRouter{stateDir: stateDir, clients: map[string]*metadata.Client{}}
}

func (r *MetadataRouter) client(dir string) *metadata.Client {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, ok := r.clients[dir]
	if !ok {
		c = metadata.NewClient(metadataSocket(dir))
		r.clients[dir] = c
	}
	return c
}

// Register publishes in to the metadata service of its lab.
func (r *MetadataRouter) Register(ctx context.Context, in configdrive.Instance) error {
	st, err := labOf(r.stateDir, in.UUID)
	if err != nil || st == nil || st.MetadataDir == "" {
		return err
	}
	return r.client(st.MetadataDir).Register(ctx, in)
}

// Unregister withdraws instance uuid from the metadata service of its
// lab. If the service does not run, the registration is removed from its
// directory, so that a service started again does not serve it.
func (r *MetadataRouter) Unregister(ctx context.Context, uuid string) error {
	st, err := labOf(r.stateDir, uuid)
	if err != nil || st == nil || st.MetadataDir == "" {
		return err
	}
	err = r.client(st.MetadataDir).Unregister(ctx, uuid)
	if !errors.Is(err, metadata.ErrUnavailable) {
		return err
	}
	svc, oerr := metadata.Open(metadata.WithStateDir(filepath.Join(st.MetadataDir, "instances")))
	if oerr != nil {
		return errors.Join(err, oerr)
	}
	defer svc.Close()
	return svc.Unregister(ctx, uuid)
}

// Close releases the router's connections.
func (r *MetadataRouter) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for k, c := range r.clients {
		c.Close()
		delete(r.clients, k)
	}
	return nil
}

// labOf returns the state of the lab that records instance id, or nil.
func labOf(stateDir, id string) (*State, error) {
	names, err := ListStates(stateDir)
	if err != nil {
		return nil, err
	}
	for _, n := range names {
		st, _, err := LoadState(stateDir, n)
		if err != nil || !slices.Contains(st.Instances, id) {
			continue
		}
		return st, nil
	}
	return nil, nil
}
