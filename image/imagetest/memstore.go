package imagetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/dockervisor/dockervisor/image"
	"github.com/dockervisor/dockervisor/image/internal/stream"
)

// MemStore is an in-memory [image.Store]. It keeps image data in memory, so
// use it for small test images only. The zero value is not usable; call
// [NewMemStore]. It is safe for concurrent use.
type MemStore struct {
	mu     sync.RWMutex
	images map[string]memImage
}

type memImage struct {
	meta image.Metadata
	data []byte // never modified in place; Corrupt replaces it
}

var _ image.Store = (*MemStore)(nil)
var _ Corrupter = (*MemStore)(nil)

// NewMemStore returns an empty in-memory store.
func NewMemStore() *MemStore {
	return &MemStore{images: make(map[string]memImage)}
}

// Stat returns the metadata of image id, or an error wrapping
// [image.ErrNotFound].
func (s *MemStore) Stat(ctx context.Context, id string) (image.Metadata, error) {
	if err := ctx.Err(); err != nil {
		return image.Metadata{}, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	im, ok := s.images[id]
	if !ok {
		return image.Metadata{}, fmt.Errorf("%w: %q", image.ErrNotFound, id)
	}
	return im.meta.Clone(), nil
}

// Open streams the data of image id and verifies its size and sha256 at
// the end. The stream fails with ctx's error once ctx is done.
func (s *MemStore) Open(ctx context.Context, id string) (io.ReadCloser, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.RLock()
	im, ok := s.images[id]
	s.mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("%w: %q", image.ErrNotFound, id)
	}
	r := io.NopCloser(stream.WithContext(ctx, bytes.NewReader(im.data)))
	return image.Verify(r, im.meta.Size, image.Digest{Name: "sha256", Hash: sha256.New(), Want: im.meta.SHA256}), nil
}

// List returns the images that match opts, ordered by ID.
func (s *MemStore) List(ctx context.Context, opts image.ListOptions) ([]image.Metadata, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []image.Metadata
	for _, id := range slices.Sorted(maps.Keys(s.images)) {
		if m := s.images[id].meta; opts.Match(m) {
			out = append(out, m.Clone())
		}
	}
	return out, nil
}

// Create reads r to its end and stores it with meta. An empty meta.ID gets
// a random UUID; an ID that exists returns [image.ErrAlreadyExists]. An
// empty container or disk format means docker and raw; other container
// formats return [image.ErrUnsupportedFormat]. On error nothing is stored.
func (s *MemStore) Create(ctx context.Context, meta image.Metadata, r io.Reader) (image.Metadata, error) {
	meta, err := meta.Clone().ForCreate()
	if err != nil {
		return image.Metadata{}, err
	}
	if meta.ID == "" {
		meta.ID = uuid.NewString()
	}
	s.mu.RLock()
	_, exists := s.images[meta.ID]
	s.mu.RUnlock()
	if exists {
		return image.Metadata{}, fmt.Errorf("%w: %q", image.ErrAlreadyExists, meta.ID)
	}
	h := sha256.New()
	var buf bytes.Buffer
	if _, err := io.Copy(io.MultiWriter(&buf, h), stream.WithContext(ctx, r)); err != nil {
		return image.Metadata{}, fmt.Errorf("create image %q: %w", meta.ID, err)
	}
	meta.Size = int64(buf.Len())
	meta.SHA256 = hex.EncodeToString(h.Sum(nil))
	meta.CreatedAt = time.Now().UTC()
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.images[meta.ID]; ok {
		return image.Metadata{}, fmt.Errorf("%w: %q", image.ErrAlreadyExists, meta.ID)
	}
	s.images[meta.ID] = memImage{meta: meta, data: buf.Bytes()}
	return meta.Clone(), nil
}

// Delete removes image id. A missing image is not an error.
func (s *MemStore) Delete(ctx context.Context, id string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.images, id)
	return nil
}

// Corrupt flips one bit of image id's data without changing its recorded
// checksum, so that the next Open fails with [image.ErrChecksumMismatch].
func (s *MemStore) Corrupt(ctx context.Context, id string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	im, ok := s.images[id]
	if !ok {
		return fmt.Errorf("%w: %q", image.ErrNotFound, id)
	}
	if len(im.data) == 0 {
		return fmt.Errorf("%w: image %q is empty", image.ErrInvalidArgument, id)
	}
	data := slices.Clone(im.data)
	data[len(data)/2] ^= 0x01
	im.data = data
	s.images[id] = im
	return nil
}
