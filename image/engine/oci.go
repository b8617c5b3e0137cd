package engine

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"slices"
	"strings"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/dockervisor/dockervisor/image/internal/stream"
)

// Media types of the Docker image manifest format, which OCI layouts may
// hold as well.
const (
	mediaTypeDockerManifest     = "application/vnd.docker.distribution.manifest.v2+json"
	mediaTypeDockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
	mediaTypeDockerConfig       = "application/vnd.docker.container.image.v1+json"
	mediaTypeDockerLayer        = "application/vnd.docker.image.rootfs.diff.tar"
	mediaTypeDockerLayerGzip    = "application/vnd.docker.image.rootfs.diff.tar.gzip"
	mediaTypeDockerForeignGzip  = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
)

// layerTypes are the layer media types of tar layers. The engine's load
// reads a layer's compression from its data, not from its media type
// (some tools write uncompressed layers labelled gzip), so the data is
// what is checked.
var layerTypes = map[string]bool{
	ocispec.MediaTypeImageLayer:     true,
	ocispec.MediaTypeImageLayerGzip: true,
	ocispec.MediaTypeImageLayerZstd: true,
	//lint:ignore SA1019 deprecated, but older tools still write these layers
	ocispec.MediaTypeImageLayerNonDistributable: true,
	//lint:ignore SA1019 deprecated, but older tools still write these layers
	ocispec.MediaTypeImageLayerNonDistributableGzip: true,
	//lint:ignore SA1019 deprecated, but older tools still write these layers
	ocispec.MediaTypeImageLayerNonDistributableZstd: true,
	mediaTypeDockerLayer:                            true,
	mediaTypeDockerLayerGzip:                        true,
	mediaTypeDockerForeignGzip:                      true,
}

// Limits of what an archive scan keeps in memory, independent of the
// image size: the JSON blobs (index, manifests, config) and the entry list.
const (
	maxJSONBlob   = 4 << 20  // one manifest, index or config
	maxJSONTotal  = 32 << 20 // all of them
	maxEntries    = 1 << 16  // tar entries
	maxIndexDepth = 4        // nested indexes
	magicLen      = 6        // leading bytes kept of each blob, to check its compression
)

// archiveKind is what the first entries of an archive say it is.
type archiveKind int

const (
	kindDockerSave archiveKind = iota // <id>/layer.tar, manifest.json: one pass
	kindLayout                        // blobs/, index.json, oci-layout first: needs a scan
)

// sniff reads the first tar headers of r and tells which kind of archive it
// is. It returns a reader that yields r's data from the start again.
func sniff(r io.Reader) (archiveKind, io.Reader, error) {
	var rec bytes.Buffer
	var tr *tar.Reader
	rs, seekable := r.(io.ReadSeeker)
	if seekable {
		tr = tar.NewReader(r)
	} else {
		tr = tar.NewReader(io.TeeReader(r, &rec))
	}
	kind := kindDockerSave
	for {
		hdr, err := tr.Next()
		if err != nil {
			break // let the real pass report it
		}
		name := path.Clean(strings.TrimPrefix(hdr.Name, "./"))
		if name == "." {
			continue
		}
		top, _, _ := strings.Cut(name, "/")
		if top == ocispec.ImageBlobsDir || name == ocispec.ImageLayoutFile || name == ocispec.ImageIndexFile {
			kind = kindLayout
		}
		break
	}
	if seekable {
		if _, err := rs.Seek(0, io.SeekStart); err != nil {
			return kind, nil, err
		}
		return kind, rs, nil
	}
	return kind, io.MultiReader(&rec, r), nil
}

// entry is what a scan remembers of one tar entry.
type entry struct {
	typ   byte
	size  int64
	magic []byte
}

// layout is what a scan of a whole archive learned: its entries, the
// layout files and the JSON blobs (verified against their digests).
type layout struct {
	entries      map[string]entry
	ociLayout    []byte
	index        []byte
	manifestJSON []byte            // a docker-save manifest, if any
	blobs        map[string][]byte // sha256 hex → content of small JSON blobs
}

// blobName is the archive path of the blob with digest d.
func blobName(d string) string { return "blobs/sha256/" + d }

// scan reads the archive from r to its end and keeps what planning needs,
// in memory bounded by the limits above. When r is an [io.Seeker], it
// seeks over the blobs it does not keep instead of reading them.
func scan(ctx context.Context, r io.Reader) (*layout, error) {
	src := &srcReader{r: stream.WithContext(ctx, r)}
	fail := func(err error) (*layout, error) { return nil, src.failure(err) }
	l := &layout{entries: make(map[string]entry), blobs: make(map[string][]byte)}
	var tr *tar.Reader
	if s, ok := r.(io.Seeker); ok {
		tr = tar.NewReader(seekSrc{src, s})
	} else {
		tr = tar.NewReader(src)
	}
	buf := make([]byte, copyBuf)
	kept := 0
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fail(fmt.Errorf("corrupt archive: %w", err))
		}
		if len(l.entries) >= maxEntries {
			return fail(fmt.Errorf("more than %d entries", maxEntries))
		}
		name := path.Clean(strings.TrimPrefix(hdr.Name, "./"))
		e := entry{typ: hdr.Typeflag, size: hdr.Size}
		l.entries[name] = e
		if hdr.Typeflag != tar.TypeReg {
			continue
		}
		var keep *[]byte
		limit := int64(maxManifest)
		switch name {
		case ocispec.ImageLayoutFile:
			keep = &l.ociLayout
		case ocispec.ImageIndexFile:
			keep, limit = &l.index, maxJSONBlob
		case "manifest.json":
			keep = &l.manifestJSON
		}
		if keep != nil {
			if hdr.Size > limit {
				return fail(fmt.Errorf("%s is %d bytes", name, hdr.Size))
			}
			if *keep, err = io.ReadAll(tr); err != nil {
				return fail(fmt.Errorf("corrupt archive: %w", err))
			}
			continue
		}
		// A blob: keep its first bytes, and the whole of it when it may be
		// JSON (an index, a manifest or a config).
		head := make([]byte, min(hdr.Size, magicLen))
		if _, err := io.ReadFull(tr, head); err != nil {
			return fail(fmt.Errorf("corrupt archive: %w", err))
		}
		e.magic = head
		l.entries[name] = e
		hexDigest, isBlob := strings.CutPrefix(name, "blobs/sha256/")
		if isBlob && hdr.Size <= maxJSONBlob && bytes.HasPrefix(bytes.TrimLeft(head, " \t\r\n"), []byte("{")) {
			if kept += int(hdr.Size); kept > maxJSONTotal {
				return fail(fmt.Errorf("more than %d MiB of JSON blobs", maxJSONTotal>>20))
			}
			rest, err := io.ReadAll(tr)
			if err != nil {
				return fail(fmt.Errorf("corrupt archive: %w", err))
			}
			b := append(head, rest...)
			if sum := sha256.Sum256(b); hex.EncodeToString(sum[:]) != hexDigest {
				return fail(fmt.Errorf("blob %s does not match its digest", hexDigest))
			}
			l.blobs[hexDigest] = b
			continue
		}
		// The next tr.Next skips the rest of the blob: it seeks when it can.
	}
	// Read the source to its real end: verifying readers report a checksum
	// mismatch only there.
	if _, err := io.CopyBuffer(io.Discard, src, buf); err != nil {
		return fail(err)
	}
	return l, nil
}

// seekSrc is a srcReader over a source that can seek.
type seekSrc struct {
	*srcReader
	s io.Seeker
}

func (s seekSrc) Seek(offset int64, whence int) (int64, error) {
	n, err := s.s.Seek(offset, whence)
	if err != nil {
		s.err = err
	}
	return n, err
}

// plan is what the second pass streams: the config and the layers of the
// one image this platform loads, named by digest.
type plan struct {
	config string   // sha256 hex of the config blob (the engine's image ID)
	layers []string // sha256 hex of each layer blob, in order
	sizes  map[string]int64
}

// isOCI reports whether the archive holds an OCI image layout.
func (l *layout) isOCI() bool { return l.index != nil || l.ociLayout != nil }

// plan checks the OCI layout and picks the image for platform. Every
// reason to refuse the archive is found here, before the engine sees any
// of it.
func (l *layout) plan(platform ocispec.Platform) (plan, error) {
	if l.ociLayout == nil {
		return plan{}, errors.New("OCI layout without an oci-layout file")
	}
	var lay ocispec.ImageLayout
	if err := json.Unmarshal(l.ociLayout, &lay); err != nil {
		return plan{}, fmt.Errorf("oci-layout: %w", err)
	}
	if lay.Version != ocispec.ImageLayoutVersion {
		return plan{}, fmt.Errorf("OCI layout version %q is not supported (want %q)", lay.Version, ocispec.ImageLayoutVersion)
	}
	if l.index == nil {
		return plan{}, errors.New("OCI layout without index.json")
	}
	var idx ocispec.Index
	if err := json.Unmarshal(l.index, &idx); err != nil {
		return plan{}, fmt.Errorf("index.json: %w", err)
	}
	if idx.SchemaVersion != 2 {
		return plan{}, fmt.Errorf("index.json: schema version %d is not supported", idx.SchemaVersion)
	}
	var found []ocispec.Descriptor
	var seen []string
	if err := l.collect(idx, platform, 0, &found, &seen); err != nil {
		return plan{}, err
	}
	found = slices.CompactFunc(found, func(a, b ocispec.Descriptor) bool { return a.Digest == b.Digest })
	switch {
	case len(found) == 0 && len(seen) > 0:
		return plan{}, fmt.Errorf("no image for platform %s (the archive has: %s)", platformString(platform), strings.Join(seen, ", "))
	case len(found) == 0:
		return plan{}, errors.New("index.json names no image manifest")
	case len(found) > 1:
		return plan{}, fmt.Errorf("index.json names %d images for platform %s, want one", len(found), platformString(platform))
	}
	return l.planManifest(found[0], platform)
}

// collect appends to found the manifests of idx for platform, descending
// into nested indexes, and to seen the platforms of those it skipped.
func (l *layout) collect(idx ocispec.Index, platform ocispec.Platform, depth int, found *[]ocispec.Descriptor, seen *[]string) error {
	if depth > maxIndexDepth {
		return fmt.Errorf("indexes nested more than %d deep", maxIndexDepth)
	}
	for _, d := range idx.Manifests {
		switch d.MediaType {
		case ocispec.MediaTypeImageManifest, mediaTypeDockerManifest:
			if d.Platform != nil && !platformMatches(*d.Platform, platform) {
				*seen = append(*seen, platformString(*d.Platform))
				continue
			}
			if i := slices.IndexFunc(*found, func(f ocispec.Descriptor) bool { return f.Digest == d.Digest }); i < 0 {
				*found = append(*found, d)
			}
		case ocispec.MediaTypeImageIndex, mediaTypeDockerManifestList:
			if d.Platform != nil && !platformMatches(*d.Platform, platform) {
				*seen = append(*seen, platformString(*d.Platform))
				continue
			}
			b, err := l.jsonBlob(d, "index")
			if err != nil {
				return err
			}
			var sub ocispec.Index
			if err := json.Unmarshal(b, &sub); err != nil {
				return fmt.Errorf("index %s: %w", d.Digest, err)
			}
			if err := l.collect(sub, platform, depth+1, found, seen); err != nil {
				return err
			}
		default:
			// Attestations, signatures and other artifacts: not images.
		}
	}
	return nil
}

// jsonBlob returns the content of the JSON blob d, checked against its
// descriptor.
func (l *layout) jsonBlob(d ocispec.Descriptor, what string) ([]byte, error) {
	hexDigest, err := sha256Hex(d)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	b, ok := l.blobs[hexDigest]
	if !ok {
		e, present := l.entries[blobName(hexDigest)]
		if !present {
			return nil, fmt.Errorf("%s blob %s is missing from the archive", what, d.Digest)
		}
		return nil, fmt.Errorf("%s blob %s is not a JSON document of at most %d MiB (%d bytes)", what, d.Digest, maxJSONBlob>>20, e.size)
	}
	if int64(len(b)) != d.Size {
		return nil, fmt.Errorf("%s blob %s is %d bytes, its descriptor says %d", what, d.Digest, len(b), d.Size)
	}
	return b, nil
}

// sha256Hex returns the hex digest of d, which must be a sha256 digest.
func sha256Hex(d ocispec.Descriptor) (string, error) {
	if err := d.Digest.Validate(); err != nil {
		return "", fmt.Errorf("digest %q: %w", d.Digest, err)
	}
	if d.Digest.Algorithm() != "sha256" {
		return "", fmt.Errorf("digest algorithm %q is not supported", d.Digest.Algorithm())
	}
	return d.Digest.Encoded(), nil
}

// planManifest checks the image manifest d, its config and its layers.
func (l *layout) planManifest(d ocispec.Descriptor, platform ocispec.Platform) (plan, error) {
	b, err := l.jsonBlob(d, "manifest")
	if err != nil {
		return plan{}, err
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return plan{}, fmt.Errorf("manifest %s: %w", d.Digest, err)
	}
	if m.SchemaVersion != 2 {
		return plan{}, fmt.Errorf("manifest %s: schema version %d is not supported", d.Digest, m.SchemaVersion)
	}
	switch m.Config.MediaType {
	case ocispec.MediaTypeImageConfig, mediaTypeDockerConfig:
	default:
		return plan{}, fmt.Errorf("manifest %s: config media type %q is not an image config", d.Digest, m.Config.MediaType)
	}
	cb, err := l.jsonBlob(m.Config, "config")
	if err != nil {
		return plan{}, err
	}
	var cfg ocispec.Image
	if err := json.Unmarshal(cb, &cfg); err != nil {
		return plan{}, fmt.Errorf("config %s: %w", m.Config.Digest, err)
	}
	if !platformMatches(ocispec.Platform{OS: cfg.OS, Architecture: cfg.Architecture, Variant: cfg.Variant}, platform) {
		return plan{}, fmt.Errorf("no image for platform %s (the archive has: %s/%s)", platformString(platform), cfg.OS, cfg.Architecture)
	}
	if len(cfg.RootFS.DiffIDs) != len(m.Layers) {
		return plan{}, fmt.Errorf("config %s lists %d layers, the manifest %d", m.Config.Digest, len(cfg.RootFS.DiffIDs), len(m.Layers))
	}
	p := plan{config: m.Config.Digest.Encoded(), sizes: map[string]int64{m.Config.Digest.Encoded(): m.Config.Size}}
	for i, ld := range m.Layers {
		if !layerTypes[ld.MediaType] {
			return plan{}, fmt.Errorf("layer %d (%s): media type %q is not a tar layer", i, ld.Digest, ld.MediaType)
		}
		h, err := sha256Hex(ld)
		if err != nil {
			return plan{}, fmt.Errorf("layer %d: %w", i, err)
		}
		e, ok := l.entries[blobName(h)]
		switch {
		case !ok:
			return plan{}, fmt.Errorf("layer %d: blob %s is missing from the archive", i, ld.Digest)
		case e.typ != tar.TypeReg:
			return plan{}, fmt.Errorf("layer %d: blob %s is not a regular file", i, ld.Digest)
		case e.size != ld.Size:
			return plan{}, fmt.Errorf("layer %d: blob %s is %d bytes, its descriptor says %d", i, ld.Digest, e.size, ld.Size)
		}
		if c := compressionOf(e.magic); c != "none" && c != "gzip" {
			return plan{}, fmt.Errorf("layer %d (%s, %s): %s-compressed data; the engine loads uncompressed or gzip-compressed layers only", i, ld.Digest, ld.MediaType, c)
		}
		p.layers = append(p.layers, h)
		p.sizes[h] = ld.Size
	}
	return p, nil
}

// compressionOf names the compression the leading bytes of a blob show.
func compressionOf(magic []byte) string {
	switch {
	case bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
		return "gzip"
	case bytes.HasPrefix(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		return "zstd"
	case bytes.HasPrefix(magic, []byte("BZh")):
		return "bzip2"
	case bytes.HasPrefix(magic, []byte{0xfd, '7', 'z', 'X', 'Z', 0x00}):
		return "xz"
	}
	return "none"
}

// platformMatches reports whether an image for have runs on want. An empty
// field of have matches anything; arm64's variant v8 is its default.
func platformMatches(have, want ocispec.Platform) bool {
	if have.OS != "" && have.OS != want.OS {
		return false
	}
	if have.Architecture != "" && have.Architecture != want.Architecture {
		return false
	}
	norm := func(p ocispec.Platform) string {
		if p.Architecture == "arm64" && p.Variant == "v8" {
			return ""
		}
		return p.Variant
	}
	return have.Variant == "" || want.Variant == "" || norm(have) == norm(want)
}

func platformString(p ocispec.Platform) string {
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}

// emit streams the blobs p names from the archive r to w as a docker-save
// archive (the blobs under their layout paths, then manifest.json with
// RepoTags set to tag), verifying each blob's digest and size. It writes
// manifest.json and the end of the archive only after r ended cleanly and
// every blob checked out.
func emit(ctx context.Context, r io.Reader, w io.Writer, tag string, p plan) (archiveInfo, error) {
	hc := newHashedCopier()
	done := make(map[string]bool, len(p.sizes))
	entry := func(tw *tar.Writer, tr *tar.Reader, hdr *tar.Header, name string) error {
		h, isBlob := strings.CutPrefix(name, "blobs/sha256/")
		size, needed := p.sizes[h]
		if !isBlob || !needed || done[h] || hdr.Typeflag != tar.TypeReg {
			return nil // the engine gets only what it loads
		}
		if hdr.Size != size {
			return fmt.Errorf("blob %s is %d bytes, want %d", h, hdr.Size, size)
		}
		out := &tar.Header{Typeflag: tar.TypeReg, Name: blobName(h), Mode: 0o644, Size: size, ModTime: hdr.ModTime, Format: tar.FormatPAX}
		if err := tw.WriteHeader(out); err != nil {
			return err
		}
		sum, err := hc.copy(tw, tr, size)
		if err != nil {
			return fmt.Errorf("corrupt archive: %w", err)
		}
		if hex.EncodeToString(sum) != h {
			return fmt.Errorf("blob %s does not match its digest", h)
		}
		done[h] = true
		return nil
	}
	finish := func() ([]byte, time.Time, archiveInfo, error) {
		for h := range p.sizes {
			if !done[h] {
				return nil, time.Time{}, archiveInfo{}, fmt.Errorf("blob %s is missing from the archive", h)
			}
		}
		layers := make([]string, len(p.layers))
		for i, h := range p.layers {
			layers[i] = blobName(h)
		}
		out, err := json.Marshal([]struct {
			Config   string
			RepoTags []string
			Layers   []string
		}{{Config: blobName(p.config), RepoTags: []string{tag}, Layers: layers}})
		return out, time.Time{}, archiveInfo{imageID: "sha256:" + p.config}, err
	}
	return rewrite(ctx, r, w, entry, finish)
}
