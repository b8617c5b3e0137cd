package hypervisor

import (
	"context"
	"fmt"
	"slices"
	"strings"
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

// PlanPrune splits cached images into kept and removed by opts at time
// now, as [hypervisor.ImageCache] defines it: images in use are kept; the
// others are removed when unused for opts.OlderThan, then least recently
// used first while the total exceeds opts.MaxTotalBytes. Both lists are
// sorted by StoreID.
func PlanPrune(all []CachedImage, opts PruneOptions, now time.Time) (keep, drop []CachedImage) {
	var total int64
	for _, c := range all {
		total += c.Size
	}
	cand := slices.Clone(all)
	slices.SortFunc(cand, func(a, b CachedImage) int {
		if c := a.LastUsed.Compare(b.LastUsed); c != 0 {
			return c
		}
		return strings.Compare(a.StoreID, b.StoreID)
	})
	for _, c := range cand {
		remove := false
		if !c.InUse {
			if opts.OlderThan > 0 && now.Sub(c.LastUsed) >= opts.OlderThan {
				remove = true
			}
			if opts.MaxTotalBytes > 0 && total > opts.MaxTotalBytes {
				remove = true
			}
		}
		if remove {
			total -= c.Size
			drop = append(drop, c)
		} else {
			keep = append(keep, c)
		}
	}
	byID := func(a, b CachedImage) int { return strings.Compare(a.StoreID, b.StoreID) }
	slices.SortFunc(keep, byID)
	slices.SortFunc(drop, byID)
	return keep, drop
}
