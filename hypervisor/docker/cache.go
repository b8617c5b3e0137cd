package docker

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/moby/moby/client"

	"github.com/dockervisor/dockervisor/hypervisor"
	"github.com/dockervisor/dockervisor/image/engine"
)

// touchImage records that the cached image of rec was used now.
func (d *imageRoom) touchImage(rec imageRecord) {
	rec.LastUsed = time.Now()
	if err := d.state.saveImage(rec); err != nil {
		d.log.Debug("image record", "store_id", rec.StoreID, "err", err)
	}
}

// PrefetchImage fetches store image id into the engine, verified and
// tagged as Spawn would fetch it, without spawning: nil if the engine has
// it and it is current. ErrNotSupported without an image store.
func (d *imageRoom) PrefetchImage(ctx context.Context, id string) error {
	return opErr("prefetch-image", "", d.prefetch(ctx, id))
}

func (d *imageRoom) prefetch(ctx context.Context, id string) error {
	if d.opts.images == nil {
		return fmt.Errorf("%w: no image store configured (WithImageStore)", hypervisor.ErrNotSupported)
	}
	if strings.TrimSpace(id) == "" {
		return fmt.Errorf("%w: empty image ID", hypervisor.ErrInvalidArgument)
	}
	api, err := d.engine(ctx)
	if err != nil {
		return err
	}
	_, err = d.ensureImage(ctx, api, id)
	return err
}

// PruneImages removes engine images this driver fetched from its image
// store (those with an image record) that no container of this driver
// uses, by age (last fetched or spawned from) and by a bound on the total
// size of the cache, least recently used first (see
// hypervisor.PlanPrune). An image another driver's container uses is
// kept (the engine refuses to remove it) and reported kept. Each removed
// image loses its tag, its engine image and its record. Images this
// driver's snapshots committed (snapshot.CommitRepository) that no
// snapshot in progress uses, left by a snapshot whose process died, are
// removed too, whatever opts says.
func (d *imageRoom) PruneImages(ctx context.Context, opts hypervisor.PruneOptions) (hypervisor.PruneReport, error) {
	rep, err := d.prune(ctx, opts)
	return rep, opErr("prune-images", "", err)
}

func (d *imageRoom) prune(ctx context.Context, opts hypervisor.PruneOptions) (hypervisor.PruneReport, error) {
	var rep hypervisor.PruneReport
	if err := opts.Validate(); err != nil {
		return rep, err
	}
	api, err := d.engine(ctx)
	if err != nil {
		return rep, err
	}
	keys, err := d.state.images.Keys()
	if err != nil {
		return rep, err
	}
	list, err := api.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: make(client.Filters).Add("label", d.label(labelInstanceID))})
	if err != nil {
		return rep, classify(err, hypervisor.ErrNotFound)
	}
	used := map[string]bool{}
	for _, c := range list.Items {
		used[c.ImageID] = true
		if s, ok := d.specFromLabels(c.Labels); ok {
			used[s.Image] = true
		}
	}
	recs := map[string]imageRecord{}
	var all []hypervisor.CachedImage
	for _, k := range keys {
		r, ok, err := d.state.images.Load(k)
		if err != nil || !ok {
			continue
		}
		recs[r.StoreID] = r
		all = append(all, hypervisor.CachedImage{StoreID: r.StoreID, Size: r.Size, LastUsed: r.LastUsed, InUse: used[r.EngineID] || used[r.StoreID]})
	}
	keep, drop := hypervisor.PlanPrune(all, opts, time.Now())
	rep.Kept = keep
	var errs []error
	for _, c := range drop {
		r := recs[c.StoreID]
		removed, err := d.removeCached(ctx, api, r)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("store image %s: %w", r.StoreID, err))
			rep.Kept = append(rep.Kept, c)
		case !removed:
			c.InUse = true
			rep.Kept = append(rep.Kept, c)
		default:
			rep.Removed = append(rep.Removed, c)
			rep.FreedBytes += c.Size
		}
	}
	slices.SortFunc(rep.Kept, func(a, b hypervisor.CachedImage) int { return strings.Compare(a.StoreID, b.StoreID) })
	// Committed images of snapshots whose process died are no cache, but
	// they are this driver's images that nothing uses: they go too.
	gone, err := d.records.removeCommitted(ctx, api, "")
	if len(gone) > 0 {
		d.log.DebugContext(ctx, "removed committed images no snapshot uses", "refs", gone)
	}
	return rep, errors.Join(append(errs, err)...)
}

// removeCached removes a cached store image: its tag and engine image,
// then its record. removed is false when a container (of another driver)
// still uses the engine image: then nothing is changed.
func (d *imageRoom) removeCached(ctx context.Context, api APIClient, r imageRecord) (removed bool, err error) {
	tag := engine.TagFor(r.StoreID)
	// Without force the engine refuses while a container uses the image.
	_, err = api.ImageRemove(ctx, tag, client.ImageRemoveOptions{PruneChildren: true})
	switch {
	case isConflict(err):
		return false, nil
	case err != nil && !isNotFound(err):
		return false, classify(err, hypervisor.ErrImageNotFound)
	}
	if r.EngineID != "" {
		d.removeUntaggedImage(ctx, api, r.EngineID)
	}
	return true, d.state.images.Remove(imageKey(r.StoreID))
}
