package docker

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"regexp"
	"time"

	"github.com/distribution/reference"
	"github.com/moby/moby/client"

	"github.com/dockervisor/dockervisor/hypervisor"
	"github.com/dockervisor/dockervisor/image"
	"github.com/dockervisor/dockervisor/image/engine"
)

// imageRoom is the Driver's room of images: fetch, cache, prune and
// snapshot.
type imageRoom struct {
	*core
	life instanceReader
}

// WithImageStore makes Spawn take instance images from s: the spec's Image
// is a store image ID. A store image missing on the engine (or changed in
// the store since it was loaded) is streamed from the store into the
// engine's image load, its sha256 verified on the way, and tagged
// engine.TagFor(ID). Concurrent spawns of the same missing image fetch it
// once. Loaded images stay on the engine as a cache.
//
// Store images (container format "docker") may be docker-save archives or
// OCI image-layout archives (see engine.LoadFrom); the image of an OCI
// index is picked for the engine's platform. An archive the engine cannot
// load is ErrInvalidArgument wrapping image.ErrUnsupportedFormat, a store
// image whose data does not match its checksum ErrCorrupt wrapping
// image.ErrChecksumMismatch, and a malformed store ID ErrInvalidArgument.
//
// Without an image store, the spec's Image is an engine image reference,
// checked against the reference grammar before any engine call.
func WithImageStore(s image.Reader) Option {
	return func(o *options) error {
		if s == nil {
			return fmt.Errorf("%w: nil image store", hypervisor.ErrInvalidArgument)
		}
		o.images = s
		return nil
	}
}

// imageRecord remembers which store data an engine tag was loaded from, so
// that a cached image is reused only while the store image is unchanged.
type imageRecord struct {
	StoreID  string `json:"store_id"`
	SHA256   string `json:"sha256,omitempty"`
	Checksum string `json:"checksum,omitempty"`
	Size     int64  `json:"size"`
	EngineID string `json:"engine_id"`
	// LastUsed is when the image was last fetched or spawned from.
	LastUsed time.Time `json:"last_used,omitzero"`
}

func (r imageRecord) matches(m image.Metadata) bool {
	if m.SHA256 != "" {
		return r.SHA256 == m.SHA256
	}
	return m.Checksum != "" && r.Checksum == m.Checksum && r.Size == m.Size
}

// ensureImage returns the engine reference of the instance image: with an
// image store, the store image loaded into the engine (fetched if missing
// or stale); without one, ref itself once the engine has it.
func (d *imageRoom) ensureImage(ctx context.Context, api APIClient, ref string) (string, error) {
	engineRef, _, err := d.ensureImageInspected(ctx, api, ref)
	return engineRef, err
}

// ensureImageInspected is ensureImage that also returns the engine's
// inspection of the image when it made one on the way (nil after a
// fetch), which spares the spawn's next look at the image a call.
func (d *imageRoom) ensureImageInspected(ctx context.Context, api APIClient, ref string) (string, *client.ImageInspectResult, error) {
	if d.opts.images == nil {
		if err := checkImageRef(ref); err != nil {
			return "", nil, err
		}
		img, err := api.ImageInspect(ctx, ref)
		if err != nil {
			return "", nil, classify(err, hypervisor.ErrImageNotFound)
		}
		return ref, &img, nil
	}
	meta, err := d.opts.images.Stat(ctx, ref)
	if err != nil {
		return "", nil, fmt.Errorf("store image %s: %w", ref, classify(err, hypervisor.ErrImageNotFound))
	}
	if meta.ContainerFormat != "" && meta.ContainerFormat != image.ContainerFormatDocker {
		return "", nil, fmt.Errorf("%w: store image %s has container format %q: %w",
			hypervisor.ErrInvalidArgument, ref, meta.ContainerFormat, image.ErrUnsupportedFormat)
	}
	tag := engine.TagFor(meta.ID)
	for {
		if img, ok := d.cached(ctx, api, tag, meta); ok {
			return tag, img, nil
		}
		// One fetch per store image version, shared by concurrent spawns.
		ch := d.fetches.DoChan(meta.ID+"@"+meta.SHA256+meta.Checksum, func() (any, error) {
			return nil, d.fetchImage(ctx, api, meta, tag)
		})
		select {
		case <-ctx.Done():
			return "", nil, ctx.Err()
		case res := <-ch:
			if res.Err == nil {
				return tag, nil, nil
			}
			if ctx.Err() == nil && (errors.Is(res.Err, context.Canceled) || errors.Is(res.Err, context.DeadlineExceeded)) {
				continue // the caller that ran the fetch gave up; this one has not
			}
			return "", nil, res.Err
		}
	}
}

// engineImageID matches an engine image ID, full or short, with or without
// its algorithm.
var engineImageID = regexp.MustCompile(`^(?:sha256:[a-f0-9]{64}|[a-f0-9]{12,64})$`)

// checkImageRef checks an engine image reference against the reference
// grammar (name[:tag][@digest], or an image ID), so that no caller string
// can reach an engine endpoint other than the image one: the client puts
// the reference into the request path, where "../containers/x" would be
// cleaned into another endpoint.
func checkImageRef(ref string) error {
	if engineImageID.MatchString(ref) {
		return nil
	}
	if _, err := reference.ParseNormalizedNamed(ref); err != nil {
		return fmt.Errorf("%w: image reference %q: %w", hypervisor.ErrInvalidArgument, ref, err)
	}
	return nil
}

// cached reports whether tag on the engine holds the store image meta,
// with the engine's inspection of the image when it does.
func (d *imageRoom) cached(ctx context.Context, api APIClient, tag string, meta image.Metadata) (*client.ImageInspectResult, bool) {
	rec, ok := d.state.loadImage(meta.ID)
	if !ok || !rec.matches(meta) {
		return nil, false
	}
	res, err := api.ImageInspect(ctx, tag)
	if err != nil || res.ID != rec.EngineID {
		return nil, false
	}
	d.touchImage(rec)
	return &res, true
}

// fetchImage streams the store image into the engine, verifying it.
func (d *imageRoom) fetchImage(ctx context.Context, api APIClient, meta image.Metadata, tag string) error {
	d.log.DebugContext(ctx, "fetching image", "store_id", meta.ID, "tag", tag, "size", meta.Size)
	// The engine's platform picks the image of an OCI index.
	v, err := api.ServerVersion(ctx, client.ServerVersionOptions{})
	if err != nil {
		return fmt.Errorf("store image %s: %w", meta.ID, classify(err, hypervisor.ErrUnavailable))
	}
	platform := ""
	if v.Os != "" && v.Arch != "" {
		platform = v.Os + "/" + v.Arch
	}
	// Verify against the metadata the cache record will hold, whatever the
	// store checks itself: the engine load never gets the end of the
	// archive on a mismatch. An OCI layout is read twice (see
	// engine.LoadFrom). From a store that can seek (image.SeekOpener), the
	// first read, which only plans and sends nothing to the engine, skips
	// the whole-archive checksum and seeks over the layers; the second,
	// verified here against meta (not again by the store), streams the
	// image and checks the whole archive and each blob before the engine
	// gets the end of it. So a store copy that does not match its checksum
	// is refused with nothing loaded (TestSpawnFromBadOCIArchive).
	size := meta.Size
	if size <= 0 {
		size = -1 // unknown: check the digest only
	}
	openStore := func(ctx context.Context) (io.ReadCloser, error) { return d.opts.images.Open(ctx, meta.ID) }
	var scan engine.Opener // other stores: both reads verified, one open for docker-save
	if so, ok := d.opts.images.(image.SeekOpener); ok {
		scan = func(ctx context.Context) (io.ReadCloser, error) { return so.OpenSeeker(ctx, meta.ID) }
		// The check below is the one the store's Open would repeat.
		openStore = scan
	}
	open := func(ctx context.Context) (io.ReadCloser, error) {
		rc, err := openStore(ctx)
		if err != nil {
			return nil, err
		}
		return image.Verify(rc, size, image.Digest{Name: "sha256", Hash: sha256.New(), Want: meta.SHA256}), nil
	}
	prev, _ := d.state.loadImage(meta.ID)
	engineID, err := engine.LoadFrom(ctx, api, open, tag, engine.LoadOptions{Platform: platform, Scan: scan, Logger: d.log})
	if err != nil {
		return fmt.Errorf("store image %s: %w", meta.ID, classify(err, hypervisor.ErrImageNotFound))
	}
	if err := d.state.saveImage(imageRecord{StoreID: meta.ID, SHA256: meta.SHA256, Checksum: meta.Checksum, Size: meta.Size, EngineID: engineID, LastUsed: time.Now()}); err != nil {
		return err
	}
	if prev.EngineID != "" && prev.EngineID != engineID {
		// The store image changed: the old version lost its tag. Remove it
		// unless instances still use it (then their Destroy removes it).
		d.removeUntaggedImage(ctx, api, prev.EngineID)
	}
	return nil
}

// removeUntaggedImage removes the engine image id if it has no tag left and
// no container uses it: an old version of a store image that a refresh
// replaced. Failures are only logged (at Warn: the image stays on the
// engine); the image is a cache.
func (d *imageRoom) removeUntaggedImage(ctx context.Context, api APIClient, id string) {
	res, err := api.ImageInspect(ctx, id)
	if err != nil || len(res.RepoTags) > 0 {
		return
	}
	// Without force the engine refuses while a container uses the image.
	if _, err := api.ImageRemove(ctx, id, client.ImageRemoveOptions{PruneChildren: true}); err != nil && !isNotFound(err) && !isConflict(err) {
		d.log.WarnContext(ctx, "superseded image left on the engine", "op", "remove-superseded-image", "image", id, "err", err)
	}
}

var _ engine.LoadAPI = (APIClient)(nil)

// imageAPI is the part of APIClient that image loading needs.
type imageAPI interface {
	ImageLoad(ctx context.Context, input io.Reader, opts ...client.ImageLoadOption) (client.ImageLoadResult, error)
	ImageTag(ctx context.Context, opts client.ImageTagOptions) (client.ImageTagResult, error)
	ImageRemove(ctx context.Context, ref string, opts client.ImageRemoveOptions) (client.ImageRemoveResult, error)
}
