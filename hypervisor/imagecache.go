package hypervisor

import (
	"context"
	"fmt"
	"time"
)

// PruneOptions selects the cached images [ImageCache.PruneImages] removes.
// Only images the backend fetched from its image store and that no
// instance (in any state) uses are candidates. With both bounds zero
// nothing is removed.
type PruneOptions struct {
	// OlderThan removes candidates not used (fetched or spawned from) for
	// at least this long. Zero: no age bound.
	OlderThan time.Duration
	// MaxTotalBytes removes the least recently used candidates until the
	// cache (every image the backend fetched, used or not) holds at most
	// this many bytes. Zero: no size bound.
	MaxTotalBytes int64
}

// Validate rejects negative bounds.
func (o PruneOptions) Validate() error {
	if o.OlderThan < 0 || o.MaxTotalBytes < 0 {
		return fmt.Errorf("%w: negative prune bound", ErrInvalidArgument)
	}
	return nil
}

// CachedImage is one image in the backend's cache.
type CachedImage struct {
	StoreID  string    `json:"store_id"`  // the store image ID
	Size     int64     `json:"size"`      // bytes, as the store reported it
	LastUsed time.Time `json:"last_used"` // fetched, or last spawned from
	InUse    bool      `json:"in_use"`    // an instance uses it
}

// PruneReport lists what a prune removed and kept.
type PruneReport struct {
	Removed    []CachedImage `json:"removed,omitempty"`
	Kept       []CachedImage `json:"kept,omitempty"`
	FreedBytes int64         `json:"freed_bytes"`
}

// ImageCache manages the images a backend fetched from its image store.
type ImageCache interface {
	// PrefetchImage fetches store image id into the backend's cache
	// without spawning anything, as Spawn would (verified), so a scheduler
	// can warm a host. Nil if it is cached and current. ErrNotSupported
	// without an image store, ErrImageNotFound if the store lacks it.
	PrefetchImage(ctx context.Context, id string) error
	// PruneImages removes cached images no instance uses, by age and by a
	// total size bound (see PruneOptions), least recently used first.
	PruneImages(ctx context.Context, opts PruneOptions) (PruneReport, error)
}
