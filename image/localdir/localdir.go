package localdir

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/dockervisor/dockervisor/image"
	"github.com/dockervisor/dockervisor/image/internal/stream"
	"github.com/dockervisor/dockervisor/internal/atomicfile"
)

const (
	dataExt = ".tar"
	metaExt = ".json"
	tmpPref = ".tmp-"
)

// validID is the set of IDs the store accepts: no path separators, no
// leading dot, bounded length.
var validID = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$`)

// Store is an [image.Store] in a local directory. Create it with [New].
type Store struct {
	dir  string
	log  *slog.Logger
	sync bool
	// mu orders Create's commit and Delete (writers) against Open's
	// metadata read and data open (readers) within this process.
	mu sync.RWMutex
}

var _ image.Store = (*Store)(nil)
var _ image.SeekOpener = (*Store)(nil)

// Option configures a [Store].
type Option func(*options) error

type options struct {
	log     *slog.Logger
	noSync  bool
	dirPerm fs.FileMode
}

// WithLogger sets the logger for debug messages. The default discards them.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) error {
		if l == nil {
			return fmt.Errorf("%w: nil logger", image.ErrInvalidArgument)
		}
		o.log = l
		return nil
	}
}

// WithoutSync skips fsync of files and the directory. Writes stay atomic
// (rename) but may be lost on a crash. Intended for tests and benchmarks.
func WithoutSync() Option {
	return func(o *options) error {
		o.noSync = true
		return nil
	}
}

// New returns a store in dir, creating the directory (mode 0755) if it does
// not exist.
func New(dir string, opts ...Option) (*Store, error) {
	o := options{log: slog.New(slog.DiscardHandler), dirPerm: 0o755}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	if dir == "" {
		return nil, fmt.Errorf("%w: empty directory", image.ErrInvalidArgument)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("localdir: %w", err)
	}
	if err := os.MkdirAll(abs, o.dirPerm); err != nil {
		return nil, fmt.Errorf("%w: localdir: %w", image.ErrUnavailable, err)
	}
	s := &Store{dir: abs, log: o.log, sync: !o.noSync}
	s.removeStale()
	return s, nil
}

// Dir returns the store's directory.
func (s *Store) Dir() string { return s.dir }

// Path returns the file of image id's data. It exists only while the
// image does.
func (s *Store) Path(id string) (string, error) {
	if err := checkID(id); err != nil {
		return "", err
	}
	return s.dataPath(id), nil
}

func checkID(id string) error {
	if !validID.MatchString(id) {
		return fmt.Errorf("%w: image ID %q (want 1-200 characters of [A-Za-z0-9._-], starting with a letter or digit)", image.ErrInvalidArgument, id)
	}
	return nil
}

func (s *Store) dataPath(id string) string { return filepath.Join(s.dir, id+dataExt) }
func (s *Store) metaPath(id string) string { return filepath.Join(s.dir, id+metaExt) }

// Stat returns the metadata of image id, or an error wrapping
// [image.ErrNotFound].
func (s *Store) Stat(ctx context.Context, id string) (image.Metadata, error) {
	if err := ctx.Err(); err != nil {
		return image.Metadata{}, err
	}
	if err := checkID(id); err != nil {
		return image.Metadata{}, err
	}
	return s.readMeta(id)
}

func (s *Store) readMeta(id string) (image.Metadata, error) {
	b, err := os.ReadFile(s.metaPath(id))
	if errors.Is(err, fs.ErrNotExist) {
		return image.Metadata{}, fmt.Errorf("%w: %q", image.ErrNotFound, id)
	}
	if err != nil {
		return image.Metadata{}, fmt.Errorf("%w: read metadata of %q: %w", image.ErrUnavailable, id, err)
	}
	var m image.Metadata
	if err := json.Unmarshal(b, &m); err != nil {
		return image.Metadata{}, fmt.Errorf("%w: metadata of %q: %w", image.ErrUnavailable, id, err)
	}
	if m.ID != id {
		return image.Metadata{}, fmt.Errorf("%w: metadata file of %q names image %q", image.ErrUnavailable, id, m.ID)
	}
	return m, nil
}

// Open streams the data of image id. The final Read verifies the size and
// sha256 recorded at Create and returns an error wrapping
// [image.ErrChecksumMismatch] instead of io.EOF when they differ. Reads
// fail with ctx's error once ctx is done.
func (s *Store) Open(ctx context.Context, id string) (io.ReadCloser, error) {
	f, m, err := s.openData(ctx, id)
	if err != nil {
		return nil, err
	}
	return image.Verify(f, m.Size, image.Digest{Name: "sha256", Hash: sha256.New(), Want: m.SHA256}), nil
}

// openData opens the data of image id, with its metadata.
func (s *Store) openData(ctx context.Context, id string) (*ctxFile, image.Metadata, error) {
	if err := ctx.Err(); err != nil {
		return nil, image.Metadata{}, err
	}
	if err := checkID(id); err != nil {
		return nil, image.Metadata{}, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	m, err := s.readMeta(id)
	if err != nil {
		return nil, image.Metadata{}, err
	}
	if m.ContainerFormat != image.ContainerFormatDocker {
		return nil, image.Metadata{}, fmt.Errorf("%w: image %q has container format %q", image.ErrUnsupportedFormat, id, m.ContainerFormat)
	}
	f, err := os.Open(s.dataPath(id))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, image.Metadata{}, fmt.Errorf("%w: data of %q: %w", image.ErrNotFound, id, err)
	}
	if err != nil {
		return nil, image.Metadata{}, fmt.Errorf("%w: %w", image.ErrUnavailable, err)
	}
	return &ctxFile{ctx: ctx, f: f}, m, nil
}

// ctxFile is a file whose reads stop with its context.
type ctxFile struct {
	ctx context.Context
	f   *os.File
}

func (c *ctxFile) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.f.Read(p)
}

func (c *ctxFile) Seek(offset int64, whence int) (int64, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.f.Seek(offset, whence)
}

func (c *ctxFile) Close() error { return c.f.Close() }

// OpenSeeker opens the data of image id for random access, for a caller
// that verifies what it uses by other means (see [image.SeekOpener]): the
// reader does not verify the size or the sha256. Reads and seeks fail
// with ctx's error once ctx is done.
func (s *Store) OpenSeeker(ctx context.Context, id string) (io.ReadSeekCloser, error) {
	f, _, err := s.openData(ctx, id)
	if err != nil {
		return nil, err
	}
	return f, nil
}

// List returns the images that match opts, ordered by ID.
func (s *Store) List(ctx context.Context, opts image.ListOptions) ([]image.Metadata, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", image.ErrUnavailable, err)
	}
	var out []image.Metadata
	for _, e := range entries {
		id, ok := strings.CutSuffix(e.Name(), metaExt)
		if !ok || !e.Type().IsRegular() || checkID(id) != nil {
			continue
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		m, err := s.readMeta(id)
		if errors.Is(err, image.ErrNotFound) {
			continue // deleted meanwhile
		}
		if err != nil {
			return nil, err
		}
		if opts.Match(m) {
			out = append(out, m)
		}
	}
	slices.SortFunc(out, func(a, b image.Metadata) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

// Create streams r into the store under meta.ID, or a random UUID when
// meta.ID is empty. It returns [image.ErrAlreadyExists] if the ID exists,
// [image.ErrInvalidArgument] for an invalid ID and
// [image.ErrUnsupportedFormat] for a container format other than "docker"
// (empty means docker and raw). Any failure, including an error from r or
// the end of ctx, leaves nothing behind.
func (s *Store) Create(ctx context.Context, meta image.Metadata, r io.Reader) (image.Metadata, error) {
	meta, err := meta.Clone().ForCreate()
	if err != nil {
		return image.Metadata{}, err
	}
	if meta.ID == "" {
		meta.ID = uuid.NewString()
	}
	if err := checkID(meta.ID); err != nil {
		return image.Metadata{}, err
	}
	if err := ctx.Err(); err != nil {
		return image.Metadata{}, err
	}
	if _, err := os.Lstat(s.metaPath(meta.ID)); err == nil {
		return image.Metadata{}, fmt.Errorf("%w: %q", image.ErrAlreadyExists, meta.ID)
	}

	// While it has temporary files, a Create holds the directory's
	// writers' lock shared: New removes temporary files only when no
	// Create of any process holds it (removeStale).
	unlock, err := s.writing()
	if err != nil {
		return image.Metadata{}, fmt.Errorf("%w: create image %q: %w", image.ErrUnavailable, meta.ID, err)
	}
	defer unlock()
	tmpData, n, sum, err := s.writeTemp(ctx, r)
	if err != nil {
		return image.Metadata{}, fmt.Errorf("create image %q: %w", meta.ID, err)
	}
	defer tmpData.Remove()
	meta.Size = n
	meta.SHA256 = sum
	meta.Checksum = ""
	meta.CreatedAt = time.Now().UTC().Truncate(time.Microsecond)
	mb, err := json.MarshalIndent(meta, "", "  ")
	if err != nil {
		return image.Metadata{}, fmt.Errorf("create image %q: %w", meta.ID, err)
	}
	tmpMeta, _, _, err := s.writeTemp(ctx, strings.NewReader(string(mb)+"\n"))
	if err != nil {
		return image.Metadata{}, fmt.Errorf("create image %q: %w", meta.ID, err)
	}
	defer tmpMeta.Remove()
	if err := ctx.Err(); err != nil {
		return image.Metadata{}, fmt.Errorf("create image %q: %w", meta.ID, err)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	// Link fails when <id>.tar exists, so an existing (or concurrently
	// created) image is never overwritten.
	if err := tmpData.Link(s.dataPath(meta.ID)); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return image.Metadata{}, fmt.Errorf("%w: %q", image.ErrAlreadyExists, meta.ID)
		}
		return image.Metadata{}, fmt.Errorf("%w: create image %q: %w", image.ErrUnavailable, meta.ID, err)
	}
	if err := tmpMeta.Rename(s.metaPath(meta.ID)); err != nil {
		if rerr := os.Remove(s.dataPath(meta.ID)); rerr != nil {
			s.log.Warn("localdir: data of a failed create left behind", "op", "create", "id", meta.ID, "err", rerr)
		}
		return image.Metadata{}, fmt.Errorf("%w: create image %q: %w", image.ErrUnavailable, meta.ID, err)
	}
	s.log.Debug("localdir: created image", "id", meta.ID, "size", meta.Size)
	return meta, nil
}

// writeTemp copies r into a new temporary file in the store directory,
// synced unless WithoutSync, and returns it with its size and sha256. On
// error nothing is left behind.
func (s *Store) writeTemp(ctx context.Context, r io.Reader) (f *atomicfile.File, n int64, sum string, err error) {
	f, err = atomicfile.Create(s.dir, tmpPref, 0o644, s.sync)
	if err != nil {
		return nil, 0, "", fmt.Errorf("%w: %w", image.ErrUnavailable, err)
	}
	h := sha256.New()
	buf := make([]byte, 256<<10)
	n, err = io.CopyBuffer(io.MultiWriter(f, h), stream.WithContext(ctx, r), buf)
	if err != nil {
		f.Remove()
		return nil, 0, "", err
	}
	if err = f.Close(); err != nil {
		f.Remove()
		return nil, 0, "", fmt.Errorf("%w: %w", image.ErrUnavailable, err)
	}
	return f, n, hex.EncodeToString(h.Sum(nil)), nil
}

func (s *Store) syncDir() error {
	if !s.sync {
		return nil
	}
	return atomicfile.SyncDir(s.dir)
}

// Delete removes image id. A missing image is not an error; an invalid ID
// returns [image.ErrInvalidArgument].
func (s *Store) Delete(ctx context.Context, id string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := checkID(id); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	for _, p := range []string{s.metaPath(id), s.dataPath(id)} {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%w: delete image %q: %w", image.ErrUnavailable, id, err)
	}
	if err := s.syncDir(); err != nil {
		s.log.Debug("localdir: fsync directory", "dir", s.dir, "err", err)
	}
	return nil
}

// removeStale removes the temporary files that a Create whose process was
// killed left behind, if no Create of any process runs now (the writers'
// lock is free); otherwise it leaves them for the next New.
func (s *Store) removeStale() {
	release, ok := s.lockExclusive()
	if !ok {
		return
	}
	defer release()
	des, err := os.ReadDir(s.dir)
	if err != nil {
		return
	}
	for _, de := range des {
		if strings.HasPrefix(de.Name(), tmpPref) {
			if err := os.Remove(filepath.Join(s.dir, de.Name())); err == nil {
				s.log.Debug("localdir: removed a temporary file of a killed writer", "file", de.Name())
			}
		}
	}
}
