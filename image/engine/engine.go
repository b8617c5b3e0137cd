package engine

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/dockervisor/dockervisor/errclass"
	"github.com/dockervisor/dockervisor/image"
	"github.com/dockervisor/dockervisor/image/internal/stream"
	"github.com/dockervisor/dockervisor/internal/readahead"
	"github.com/dockervisor/dockervisor/internal/undo"
)

// ErrLoadFailed means the engine reported an error while loading an
// archive. The engine's message follows it in the error text. It is an
// [errclass.ErrInvalidArgument]: the engine refused the archive.
var ErrLoadFailed = errclass.New("engine: image load failed", errclass.ErrInvalidArgument)

// LoadAPI is the part of the moby client that [Load] uses.
type LoadAPI interface {
	ImageLoad(ctx context.Context, input io.Reader, opts ...client.ImageLoadOption) (client.ImageLoadResult, error)
	ImageTag(ctx context.Context, opts client.ImageTagOptions) (client.ImageTagResult, error)
	ImageRemove(ctx context.Context, ref string, opts client.ImageRemoveOptions) (client.ImageRemoveResult, error)
	ImageInspect(ctx context.Context, ref string, opts ...client.ImageInspectOption) (client.ImageInspectResult, error)
}

// SaveAPI is the part of the moby client that [Save] uses.
type SaveAPI interface {
	ImageSave(ctx context.Context, refs []string, opts ...client.ImageSaveOption) (client.ImageSaveResult, error)
}

var (
	_ LoadAPI = (*client.Client)(nil)
	_ SaveAPI = (*client.Client)(nil)
)

// TagRepository is the repository of the tags [TagFor] makes.
const TagRepository = "dockervisor/image"

var (
	// refPattern is a docker reference with an explicit tag and no digest
	// (a subset of the distribution grammar: lower-case path components,
	// optional registry host with port).
	refPattern = regexp.MustCompile(`^(?:[a-zA-Z0-9.-]+(?::[0-9]+)?/)?[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)
	tagUnsafe  = regexp.MustCompile(`[^a-z0-9_.-]`)
)

// TagFor returns the engine reference for the store image storeID:
// "dockervisor/image:<id>" with the ID lower-cased and characters a tag
// cannot hold replaced. When that changed the ID (or it is too long), a
// hash of the original ID is appended, so different store IDs never share
// a tag. The result is deterministic.
func TagFor(storeID string) string {
	t := tagUnsafe.ReplaceAllString(strings.ToLower(storeID), "-")
	if t != storeID || len(t) > 128 || t == "" || t[0] == '.' || t[0] == '-' {
		sum := sha256.Sum256([]byte(storeID))
		t = strings.TrimLeft(t, ".-")
		if len(t) > 100 {
			t = t[:100]
		}
		if t != "" {
			t += "-"
		}
		t += hex.EncodeToString(sum[:8])
	}
	return TagRepository + ":" + t
}

// checkRef validates an exact repo:tag reference.
func checkRef(ref string) error {
	if !refPattern.MatchString(ref) {
		return fmt.Errorf("%w: reference %q is not an exact repository:tag", image.ErrInvalidArgument, ref)
	}
	return nil
}

// classify adds an image error class to an engine error.
func classify(op string, err error) error {
	switch {
	case err == nil:
		return nil
	case cerrdefs.IsNotFound(err):
		return fmt.Errorf("engine: %s: %w: %w", op, image.ErrNotFound, err)
	case client.IsErrConnectionFailed(err), cerrdefs.IsUnavailable(err):
		return fmt.Errorf("engine: %s: %w: %w", op, image.ErrUnavailable, err)
	}
	return fmt.Errorf("engine: %s: %w", op, err)
}

// Save streams the engine image ref (an exact repository:tag, so that
// exactly one tag is exported) as a `docker save` tarball. The caller
// closes it. A missing image returns [image.ErrNotFound].
func Save(ctx context.Context, api SaveAPI, ref string) (io.ReadCloser, error) {
	if err := checkRef(ref); err != nil {
		return nil, err
	}
	rc, err := api.ImageSave(ctx, []string{ref})
	if err != nil {
		return nil, classify("save "+ref, err)
	}
	return rc, nil
}

// archiveInfo is what the re-encoding learned about the archive.
type archiveInfo struct {
	imageID string // "sha256:<hex of the config blob>"
}

// errLoadEnded closes the upload pipe once the engine answered.
var errLoadEnded = errors.New("engine: load request ended")

// Load streams the docker-save archive r into the engine, tags the loaded
// image as tag (usually [TagFor] of the store image ID) and returns the
// engine's image ID ("sha256:..."). On failure nothing it loaded or tagged
// stays on the engine (see the package documentation). Loading the same
// archive under the same tag again is a no-op that returns the same ID.
//
// Load reads r once, so it takes docker-save archives only (including
// those that also carry an OCI layout); [LoadFrom] takes OCI image layouts
// as well.
func Load(ctx context.Context, api LoadAPI, r io.Reader, tag string) (string, error) {
	if err := checkRef(tag); err != nil {
		return "", err
	}
	if err := ctx.Err(); err != nil {
		return "", err
	}
	return load(ctx, api, tag, nil, func(w io.Writer) (archiveInfo, error) { return retar(ctx, r, w, tag) })
}

// Opener opens an archive's data from its start, such as an
// [image.Reader]'s Open of one image (wrapped in [image.Verify]). [LoadFrom]
// may call it twice; each reader must yield the same data, and is closed
// by LoadFrom.
type Opener func(ctx context.Context) (io.ReadCloser, error)

// LoadOptions tunes [LoadFrom]. The zero value is the default.
type LoadOptions struct {
	// Platform selects the image of an OCI index: "os/arch" or
	// "os/arch/variant", as the engine reports it. Empty means
	// "linux/" + runtime.GOARCH.
	Platform string

	// Scan, if set, opens the archive for the first read of an OCI layout
	// (and the look at its first entries) instead of the Opener. That read
	// only plans: it picks the image and refuses what the engine cannot
	// load, and nothing of it reaches the engine. So Scan may skip the
	// whole-archive checksum that the Opener's reader verifies: the
	// second read, through the Opener, verifies the whole archive and each
	// blob it streams before the engine gets manifest.json and the end of
	// the archive, so data that changed between the reads, or that does
	// not match its checksum, is never loaded (the load fails and is
	// rolled back). A reader that is also an [io.Seeker] lets the scan
	// seek over the layers instead of reading them. When the scan refuses
	// an archive, the Opener's reader is read to its end, so that a
	// checksum mismatch is reported as such.
	Scan Opener

	// Logger receives a warning when a failed load cannot be undone (a
	// tag or image left on the engine); nil discards it. The returned
	// error says so too.
	Logger *slog.Logger
}

// LoadFrom loads the archive that open yields, as [Load] does, and takes
// every archive format the engine's image load can be fed from:
//   - a docker-save archive (`docker save`, `skopeo copy … docker-archive:`),
//     streamed in one pass as by [Load];
//   - an OCI image layout archive (`skopeo copy … oci-archive:`,
//     `podman save --format oci-archive`), with uncompressed or gzip layers
//     and an index that names one image manifest for the platform, directly
//     or through nested indexes;
//   - an archive with both layouts (newer engines' `docker save`), loaded
//     through its OCI layout.
//
// An OCI layout is read twice. The first read (no engine call) checks the
// whole layout and picks the image: an unknown layout version, no image
// for the platform, a compression the engine cannot read (zstd), a missing
// or mismatched blob are all refused here with [image.ErrUnsupportedFormat],
// before anything reaches the engine. The second read streams the picked
// config and layers, as a docker-save archive made on the fly, into the
// engine's load, verifying each blob's digest; as with [Load], manifest.json
// and the end of the archive go to the engine only after the source ended
// cleanly. Memory stays bounded by a copy buffer and the layout's JSON
// documents (at most 32 MiB of them), whatever the image size.
func LoadFrom(ctx context.Context, api LoadAPI, open Opener, tag string, opts LoadOptions) (string, error) {
	if err := checkRef(tag); err != nil {
		return "", err
	}
	platform, err := parsePlatform(opts.Platform)
	if err != nil {
		return "", err
	}
	if err := ctx.Err(); err != nil {
		return "", err
	}
	first := open
	if opts.Scan != nil {
		first = opts.Scan
	}
	rc, err := first(ctx)
	if err != nil {
		return "", err
	}
	kind, r, err := sniff(rc)
	if err != nil {
		rc.Close()
		return "", fmt.Errorf("engine: read archive: %w", err)
	}
	if kind == kindDockerSave {
		if opts.Scan != nil {
			// One verified pass, through the Opener.
			rc.Close()
			if rc, err = open(ctx); err != nil {
				return "", err
			}
			r = rc
		}
		defer rc.Close()
		ra := readahead.New(r, readAheadChunk, readAheadChunks)
		defer ra.Close()
		return load(ctx, api, tag, opts.Logger, func(w io.Writer) (archiveInfo, error) { return retar(ctx, ra, w, tag) })
	}
	lay, err := scan(ctx, r)
	rc.Close()
	produce := func(r io.Reader, w io.Writer) (archiveInfo, error) { return retar(ctx, r, w, tag) }
	switch {
	case err != nil:
	case lay.isOCI():
		var p plan
		if p, err = lay.plan(platform); err != nil {
			err = fmt.Errorf("engine: %w: %w", image.ErrUnsupportedFormat, err)
		}
		produce = func(r io.Reader, w io.Writer) (archiveInfo, error) { return emit(ctx, r, w, tag, p) }
	case lay.manifestJSON == nil:
		err = fmt.Errorf("engine: %w: neither manifest.json nor index.json: not an image archive", image.ErrUnsupportedFormat)
	}
	if err != nil && opts.Scan != nil {
		// An unverified scan may have refused data that does not match
		// its checksum: say so.
		if verr := drainVerified(ctx, open); verr != nil {
			return "", verr
		}
	}
	if err != nil {
		return "", err
	}
	rc, err = open(ctx)
	if err != nil {
		return "", err
	}
	defer rc.Close()
	ra := readahead.New(rc, readAheadChunk, readAheadChunks)
	defer ra.Close()
	return load(ctx, api, tag, opts.Logger, func(w io.Writer) (archiveInfo, error) { return produce(ra, w) })
}

// drainVerified reads the archive that open yields to its end and returns
// the error of the source, if any: a verifying reader's checksum mismatch
// is the cause of an archive that a scan without verification refused.
func drainVerified(ctx context.Context, open Opener) error {
	rc, err := open(ctx)
	if err != nil {
		return err
	}
	defer rc.Close()
	if _, err := io.CopyBuffer(io.Discard, stream.WithContext(ctx, rc), make([]byte, copyBuf)); err != nil {
		return fmt.Errorf("engine: read archive: %w", err)
	}
	return nil
}

// parsePlatform parses "os/arch[/variant]"; empty is this machine's.
func parsePlatform(s string) (ocispec.Platform, error) {
	if s == "" {
		return ocispec.Platform{OS: "linux", Architecture: runtime.GOARCH}, nil
	}
	parts := strings.Split(s, "/")
	if len(parts) < 2 || len(parts) > 3 || slices.Contains(parts, "") {
		return ocispec.Platform{}, fmt.Errorf("%w: platform %q is not os/arch[/variant]", image.ErrInvalidArgument, s)
	}
	p := ocispec.Platform{OS: parts[0], Architecture: parts[1]}
	if len(parts) == 3 {
		p.Variant = parts[2]
	}
	return p, nil
}

// load runs produce, which writes a docker-save archive, into the engine's
// image load, then tags the image (see [Load]).
func load(ctx context.Context, api LoadAPI, tag string, log *slog.Logger, produce func(w io.Writer) (archiveInfo, error)) (string, error) {
	priorID := ""
	if prior, err := api.ImageInspect(ctx, tag); err == nil {
		priorID = prior.ID
	} else if !cerrdefs.IsNotFound(err) {
		return "", classify("inspect "+tag, err)
	}

	pr, pw := io.Pipe()
	type result struct {
		info archiveInfo
		err  error
	}
	done := make(chan result, 1)
	go func() {
		info, err := produce(pw)
		pw.CloseWithError(err)
		done <- result{info, err}
	}()
	res, lerr := api.ImageLoad(ctx, pr, client.ImageLoadWithQuiet(true))
	var msgs loadMessages
	var merr error
	if lerr == nil {
		msgs, merr = readMessages(res)
		res.Close()
	}
	pr.CloseWithError(errLoadEnded)
	rr := <-done

	// The upload is aborted (not failed) when the engine stopped reading:
	// then the engine's or the context's error is the cause.
	aborted := uploadAborted(rr.err)
	var err error
	switch {
	case rr.err != nil && !aborted:
		err = rr.err // the source or the archive failed: the cause
	case ctx.Err() != nil:
		err = fmt.Errorf("engine: load: %w", context.Cause(ctx))
	case lerr != nil:
		err = classify("load", lerr)
	case merr != nil:
		err = merr
	case rr.err != nil:
		err = fmt.Errorf("%w: the engine answered before reading the whole archive", ErrLoadFailed)
	}
	var id string
	if err == nil {
		id, err = finish(ctx, api, rr.info, msgs, tag)
	}
	if err != nil {
		u := undo.Stack{Log: log, Op: "image load", ID: tag}
		u.Push(func(ctx context.Context) error { return rollback(ctx, api, tag, priorID, msgs) })
		return "", u.Fail(ctx, err)
	}
	return id, nil
}

// finish makes tag name the loaded image and removes every other tag the
// load reported.
func finish(ctx context.Context, api LoadAPI, info archiveInfo, msgs loadMessages, tag string) (string, error) {
	if _, err := api.ImageTag(ctx, client.ImageTagOptions{Source: info.imageID, Target: tag}); err != nil {
		return "", classify("tag "+tag, err)
	}
	for _, ref := range msgs.refs {
		if ref == tag {
			continue
		}
		if _, err := api.ImageRemove(ctx, ref, client.ImageRemoveOptions{}); err != nil && !cerrdefs.IsNotFound(err) {
			return "", classify("untag "+ref, err)
		}
	}
	if len(msgs.ids) > 0 && !slices.Contains(msgs.ids, info.imageID) {
		return "", fmt.Errorf("%w: the engine loaded %v, the archive holds %s", ErrLoadFailed, msgs.ids, info.imageID)
	}
	got, err := api.ImageInspect(ctx, tag)
	if err != nil {
		return "", classify("inspect "+tag, err)
	}
	if got.ID != info.imageID {
		return "", fmt.Errorf("%w: %s names %s, the archive holds %s", ErrLoadFailed, tag, got.ID, info.imageID)
	}
	return got.ID, nil
}

// rollback undoes what a failed load may have done to the engine's tags:
// refs the engine reported are removed, and tag is removed or pointed back
// at the image it named before.
func rollback(ctx context.Context, api LoadAPI, tag, priorID string, msgs loadMessages) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	var errs []error
	for _, ref := range msgs.refs {
		if ref == tag {
			continue
		}
		if _, err := api.ImageRemove(ctx, ref, client.ImageRemoveOptions{}); err != nil && !cerrdefs.IsNotFound(err) {
			errs = append(errs, classify("rollback: untag "+ref, err))
		}
	}
	cur, err := api.ImageInspect(ctx, tag)
	switch {
	case cerrdefs.IsNotFound(err):
	case err != nil:
		errs = append(errs, classify("rollback: inspect "+tag, err))
	case priorID == "":
		if _, err := api.ImageRemove(ctx, tag, client.ImageRemoveOptions{PruneChildren: true}); err != nil && !cerrdefs.IsNotFound(err) {
			errs = append(errs, classify("rollback: remove "+tag, err))
		}
	case cur.ID != priorID:
		if _, err := api.ImageTag(ctx, client.ImageTagOptions{Source: priorID, Target: tag}); err != nil {
			errs = append(errs, classify("rollback: retag "+tag, err))
		}
	}
	return errors.Join(errs...)
}

// loadMessages is what the engine's load stream said.
type loadMessages struct {
	refs []string // "Loaded image: <ref>"
	ids  []string // "Loaded image ID: <id>"
}

// readMessages reads the engine's JSON message stream to its end.
func readMessages(r io.Reader) (loadMessages, error) {
	var out loadMessages
	dec := json.NewDecoder(r)
	for {
		var m struct {
			Stream      string `json:"stream"`
			Error       string `json:"error"`
			ErrorDetail *struct {
				Message string `json:"message"`
			} `json:"errorDetail"`
		}
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			return out, classify("read load response", err)
		}
		if msg := m.Error; msg != "" || m.ErrorDetail != nil {
			if msg == "" {
				msg = m.ErrorDetail.Message
			}
			return out, fmt.Errorf("%w: %s", ErrLoadFailed, msg)
		}
		for line := range strings.Lines(m.Stream) {
			line = strings.TrimSpace(line)
			if id, ok := strings.CutPrefix(line, "Loaded image ID: "); ok {
				out.ids = append(out.ids, id)
			} else if ref, ok := strings.CutPrefix(line, "Loaded image: "); ok {
				out.refs = append(out.refs, ref)
			}
		}
	}
}

// srcReader remembers the error of the source, to tell it apart from
// errors of the archive's content.
type srcReader struct {
	r   io.Reader
	err error
}

func (s *srcReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err != nil && err != io.EOF {
		s.err = err
	}
	return n, err
}

// failure is the error of a pass over the archive that stopped on err:
// the source's own error when the source failed, err as it is when the
// engine stopped reading the upload, and otherwise a bad archive.
func (s *srcReader) failure(err error) error {
	switch {
	case s.err != nil:
		return fmt.Errorf("engine: read archive: %w", s.err)
	case uploadAborted(err):
		return err
	}
	return fmt.Errorf("engine: %w: %w", image.ErrUnsupportedFormat, err)
}

// uploadAborted reports whether err only says that the engine stopped
// reading the upload.
func uploadAborted(err error) bool {
	return errors.Is(err, errLoadEnded) || errors.Is(err, io.ErrClosedPipe)
}

const (
	maxManifest   = 1 << 20
	maxConfigBlob = 16 << 20
	copyBuf       = 1 << 20 // copy buffer of a pass over an archive
	// The streaming pass reads its source (a file read and the store's
	// checksum, or a download) ahead, in a goroutine of its own, while
	// the archive is re-encoded into the engine's load.
	readAheadChunk  = 256 << 10
	readAheadChunks = 4
)

// rewrite is the one loop of the package that rewrites an archive on its
// way to the engine. It reads the tar archive r entry by entry and passes
// each to entry (with its cleaned name), which writes what the engine gets
// to tw; then it reads r to its real end (a verifying reader reports a
// checksum mismatch only there, after the tar's end blocks), asks manifest
// for manifest.json (its content and time) and the archive's facts, and
// only then writes manifest.json and the end of the archive. A failure is
// classified by srcReader.failure, after the source was read to its end
// (unless the source or the engine failed), so that data changed in the
// store is reported as that, not as a bad archive.
func rewrite(ctx context.Context, r io.Reader, w io.Writer,
	entry func(tw *tar.Writer, tr *tar.Reader, hdr *tar.Header, name string) error,
	manifest func() ([]byte, time.Time, archiveInfo, error),
) (archiveInfo, error) {
	src := &srcReader{r: stream.WithContext(ctx, r)}
	fail := func(err error) (archiveInfo, error) {
		if src.err == nil && !uploadAborted(err) {
			_, _ = io.Copy(io.Discard, src)
		}
		return archiveInfo{}, src.failure(err)
	}
	tr := tar.NewReader(src)
	tw := tar.NewWriter(w)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fail(fmt.Errorf("corrupt archive: %w", err))
		}
		if err := entry(tw, tr, hdr, path.Clean(strings.TrimPrefix(hdr.Name, "./"))); err != nil {
			return fail(err)
		}
	}
	if _, err := io.CopyBuffer(io.Discard, src, make([]byte, copyBuf)); err != nil {
		return fail(err)
	}
	out, mtime, info, err := manifest()
	if err != nil {
		return fail(err)
	}
	if err := ctx.Err(); err != nil {
		return archiveInfo{}, err
	}
	hdr := &tar.Header{Typeflag: tar.TypeReg, Name: "manifest.json", Mode: 0o644, Size: int64(len(out)), ModTime: mtime, Format: tar.FormatPAX}
	if err := tw.WriteHeader(hdr); err != nil {
		return fail(err)
	}
	if _, err := tw.Write(out); err != nil {
		return fail(err)
	}
	if err := tw.Close(); err != nil {
		return fail(err)
	}
	return info, nil
}

// retar copies the docker-save archive from r to w, entry by entry,
// replacing manifest.json (RepoTags set to tag, written last) and dropping
// "repositories". It writes the manifest and the end of the archive only
// after r ended cleanly and the archive checked out.
func retar(ctx context.Context, r io.Reader, w io.Writer, tag string) (archiveInfo, error) {
	buf := make([]byte, copyBuf)
	files := make(map[string]bool)
	blobs := make(map[string]string) // name → sha256 hex of small files
	var manifest []byte
	var manifestTime time.Time
	entry := func(tw *tar.Writer, tr *tar.Reader, hdr *tar.Header, name string) error {
		switch name {
		case "manifest.json":
			if hdr.Size > maxManifest {
				return fmt.Errorf("manifest.json is %d bytes", hdr.Size)
			}
			var err error
			if manifest, err = io.ReadAll(tr); err != nil {
				return fmt.Errorf("corrupt archive: %w", err)
			}
			manifestTime = hdr.ModTime
			return nil
		case "repositories":
			return nil // legacy tags: never let them reach the engine
		}
		switch hdr.Typeflag {
		case tar.TypeReg, tar.TypeSymlink, tar.TypeLink:
			// docker save links a layer that appears twice.
			files[name] = true
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if hdr.Typeflag != tar.TypeReg {
			return nil
		}
		var dst io.Writer = tw
		h := sha256.New()
		hashed := hdr.Size <= maxConfigBlob // config blobs are small; layers mostly not
		if hashed {
			dst = io.MultiWriter(tw, h)
		}
		if _, err := io.CopyBuffer(dst, tr, buf); err != nil {
			return fmt.Errorf("corrupt archive: %w", err)
		}
		if hashed {
			blobs[name] = hex.EncodeToString(h.Sum(nil))
		}
		return nil
	}
	finish := func() ([]byte, time.Time, archiveInfo, error) {
		if manifest == nil && files[ocispec.ImageIndexFile] {
			return nil, time.Time{}, archiveInfo{}, errors.New("no manifest.json: an OCI image layout, which only LoadFrom loads")
		}
		if manifest == nil {
			return nil, time.Time{}, archiveInfo{}, errors.New("no manifest.json: not a docker-save archive")
		}
		var entries []map[string]json.RawMessage
		if err := json.Unmarshal(manifest, &entries); err != nil {
			return nil, time.Time{}, archiveInfo{}, fmt.Errorf("manifest.json: %w", err)
		}
		if len(entries) != 1 {
			return nil, time.Time{}, archiveInfo{}, fmt.Errorf("manifest.json lists %d images, want 1", len(entries))
		}
		var m struct {
			Config string
			Layers []string
		}
		raw, _ := json.Marshal(entries[0])
		if err := json.Unmarshal(raw, &m); err != nil {
			return nil, time.Time{}, archiveInfo{}, fmt.Errorf("manifest.json: %w", err)
		}
		cfg := path.Clean(m.Config)
		if m.Config == "" || !files[cfg] || blobs[cfg] == "" {
			return nil, time.Time{}, archiveInfo{}, fmt.Errorf("manifest.json: config %q is not in the archive", m.Config)
		}
		for _, l := range m.Layers {
			if !files[path.Clean(l)] {
				return nil, time.Time{}, archiveInfo{}, fmt.Errorf("manifest.json: layer %q is not in the archive", l)
			}
		}
		tags, _ := json.Marshal([]string{tag})
		entries[0]["RepoTags"] = tags
		out, err := json.Marshal(entries)
		return out, manifestTime, archiveInfo{imageID: "sha256:" + blobs[cfg]}, err
	}
	return rewrite(ctx, r, w, entry, finish)
}
