package image

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/dockervisor/dockervisor/errclass"
)

// Formats of store images this SDK reads and writes.
const (
	// ContainerFormatDocker marks an image archive for a container engine:
	// a `docker save` tarball or an OCI image-layout archive.
	ContainerFormatDocker = "docker"
	// DiskFormatRaw is the disk format stored with docker images.
	DiskFormatRaw = "raw"
)

// Errors of image stores. Test with [errors.Is]. Each wraps one of the
// module's error classes (package errclass; the hypervisor package
// re-exports them), named in its documentation.
var (
	// ErrNotFound means no image has that ID. It is an
	// [errclass.ErrNotFound].
	ErrNotFound = errclass.New("image: not found", errclass.ErrNotFound)
	// ErrUnsupportedFormat means the image is not an archive the engine can
	// load (docker-save or OCI image layout), or its container format is
	// not "docker". It is an [errclass.ErrInvalidArgument].
	ErrUnsupportedFormat = errclass.New("image: unsupported format", errclass.ErrInvalidArgument)
	// ErrChecksumMismatch means the data read does not match its recorded
	// checksum. It is an [errclass.ErrCorrupt].
	ErrChecksumMismatch = errclass.New("image: checksum mismatch", errclass.ErrCorrupt)
	// ErrUnavailable means the store could not be reached or failed. It is
	// an [errclass.ErrUnavailable].
	ErrUnavailable = errclass.New("image: store unavailable", errclass.ErrUnavailable)
	// ErrInvalidArgument means the caller's input was rejected (a bad ID).
	// It is an [errclass.ErrInvalidArgument].
	ErrInvalidArgument = errclass.New("image: invalid argument", errclass.ErrInvalidArgument)
	// ErrAlreadyExists means an image with that ID exists already. It is
	// an [errclass.ErrAlreadyExists].
	ErrAlreadyExists = errclass.New("image: already exists", errclass.ErrAlreadyExists)
)

// Metadata describes a store image.
type Metadata struct {
	ID              string            `json:"id"`
	Name            string            `json:"name"`
	ContainerFormat string            `json:"container_format"`
	DiskFormat      string            `json:"disk_format"`
	Size            int64             `json:"size"`
	SHA256          string            `json:"sha256,omitempty"`   // hex digest of the data
	Checksum        string            `json:"checksum,omitempty"` // store-native checksum (Glance: md5)
	Properties      map[string]string `json:"properties,omitempty"`
	CreatedAt       time.Time         `json:"created_at,omitzero"`
}

// ListOptions filters Reader.List.
type ListOptions struct {
	Name       string            // exact display name; empty means any
	Properties map[string]string // all must match
}

// Reader reads images from a store.
type Reader interface {
	// Stat returns an image's metadata, or ErrNotFound.
	Stat(ctx context.Context, id string) (Metadata, error)
	// Open streams an image's data. The caller closes it. Reading past the
	// end verifies the data and returns ErrChecksumMismatch instead of
	// io.EOF when it does not match.
	Open(ctx context.Context, id string) (io.ReadCloser, error)
	// List returns the images that match opts.
	List(ctx context.Context, opts ListOptions) ([]Metadata, error)
}

// SeekOpener is implemented by stores that can open an image's data for
// random access, such as a file on local disk. Unlike [Reader.Open], the
// reader does not verify the data: it suits a caller that only looks at
// the data to plan a later, verified read (see engine.LoadOptions.Scan).
// The caller closes it.
type SeekOpener interface {
	OpenSeeker(ctx context.Context, id string) (io.ReadSeekCloser, error)
}

// Writer writes images to a store.
type Writer interface {
	// Create stores the data read from r with meta, and returns the stored
	// metadata (with ID, Size and SHA256 filled in). An empty meta.ID lets
	// the store choose one. Nothing is left behind when it fails.
	Create(ctx context.Context, meta Metadata, r io.Reader) (Metadata, error)
	// Delete removes an image. A missing image is not an error.
	Delete(ctx context.Context, id string) error
}

// Store reads and writes images.
type Store interface {
	Reader
	Writer
}

// Match reports whether m passes the filters of o: the same Name when o.Name
// is set, and every property of o.Properties with the same value.
func (o ListOptions) Match(m Metadata) bool {
	if o.Name != "" && m.Name != o.Name {
		return false
	}
	for k, v := range o.Properties {
		if got, ok := m.Properties[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// Clone returns a copy of m that shares no map with it.
func (m Metadata) Clone() Metadata {
	if m.Properties != nil {
		p := make(map[string]string, len(m.Properties))
		for k, v := range m.Properties {
			p[k] = v
		}
		m.Properties = p
	}
	return m
}

// ForCreate returns m as a store's Create takes it: an empty ContainerFormat
// becomes [ContainerFormatDocker] and an empty DiskFormat [DiskFormatRaw].
// A container format other than docker returns an error wrapping
// [ErrUnsupportedFormat]. The result shares Properties with m; see
// [Metadata.Clone].
func (m Metadata) ForCreate() (Metadata, error) {
	if m.ContainerFormat == "" {
		m.ContainerFormat = ContainerFormatDocker
	}
	if m.DiskFormat == "" {
		m.DiskFormat = DiskFormatRaw
	}
	if m.ContainerFormat != ContainerFormatDocker {
		return Metadata{}, fmt.Errorf("%w: container format %q (want %q)", ErrUnsupportedFormat, m.ContainerFormat, ContainerFormatDocker)
	}
	return m, nil
}
