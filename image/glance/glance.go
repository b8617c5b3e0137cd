package glance

import (
	"context"
	"crypto/md5"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/imagedata"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/images"
	"github.com/gophercloud/gophercloud/v2/pagination"

	"github.com/dockervisor/dockervisor/image"
	"github.com/dockervisor/dockervisor/image/internal/stream"
	"github.com/dockervisor/dockervisor/internal/undo"
)

// DefaultSHA256Property is the image property that holds the sha256 of an
// image's data.
const DefaultSHA256Property = "dockervisor_sha256"

// cleanupTimeout bounds the deletion of a half-created image after its
// Create failed (possibly because its context ended).
const cleanupTimeout = 30 * time.Second

// Store is an [image.Store] in Glance. Create it with [New] or [NewNoAuth].
type Store struct {
	sc      *gophercloud.ServiceClient
	log     *slog.Logger
	shaProp string
}

var _ image.Store = (*Store)(nil)

// Option configures a [Store].
type Option func(*options) error

type options struct {
	log        *slog.Logger
	shaProp    string
	httpClient *http.Client
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

// WithSHA256Property sets the image property that holds the data's sha256
// (default [DefaultSHA256Property]).
func WithSHA256Property(name string) Option {
	return func(o *options) error {
		if name == "" || reserved(name) {
			return fmt.Errorf("%w: sha256 property name %q", image.ErrInvalidArgument, name)
		}
		o.shaProp = name
		return nil
	}
}

// WithHTTPClient sets the HTTP client of a [NewNoAuth] store (default: a
// zero http.Client). [New] rejects it: its service client has its own.
func WithHTTPClient(c *http.Client) Option {
	return func(o *options) error {
		if c == nil {
			return fmt.Errorf("%w: nil http client", image.ErrInvalidArgument)
		}
		o.httpClient = c
		return nil
	}
}

func buildOptions(opts []Option) (options, error) {
	o := options{log: slog.New(slog.DiscardHandler), shaProp: DefaultSHA256Property}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return options{}, err
		}
	}
	return o, nil
}

// New returns a store that talks to Glance through sc, an image v2
// service client (openstack.NewImageV2). It does no I/O.
func New(sc *gophercloud.ServiceClient, opts ...Option) (*Store, error) {
	o, err := buildOptions(opts)
	if err != nil {
		return nil, err
	}
	if sc == nil || sc.ProviderClient == nil {
		return nil, fmt.Errorf("%w: nil service client", image.ErrInvalidArgument)
	}
	if o.httpClient != nil {
		return nil, fmt.Errorf("%w: WithHTTPClient is for NewNoAuth; configure the provider client instead", image.ErrInvalidArgument)
	}
	return &Store{sc: sc, log: o.log, shaProp: o.shaProp}, nil
}

// NewNoAuth returns a store for a Glance at endpoint (such as
// "http://127.0.0.1:9292/") that runs without keystone. It sends no token.
// It does no I/O.
func NewNoAuth(endpoint string, opts ...Option) (*Store, error) {
	o, err := buildOptions(opts)
	if err != nil {
		return nil, err
	}
	u, err := url.Parse(endpoint)
	if err != nil {
		return nil, fmt.Errorf("%w: endpoint %q: %w", image.ErrInvalidArgument, endpoint, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%w: endpoint %q: want http(s)://host[:port]/", image.ErrInvalidArgument, endpoint)
	}
	ep := gophercloud.NormalizeURL(endpoint)
	pc := &gophercloud.ProviderClient{}
	if o.httpClient != nil {
		pc.HTTPClient = *o.httpClient
	}
	sc := &gophercloud.ServiceClient{ProviderClient: pc, Endpoint: ep, ResourceBase: ep + "v2/", Type: "image"}
	return &Store{sc: sc, log: o.log, shaProp: o.shaProp}, nil
}

// coreAttrs are Glance's own image attributes and the keys its responses
// carry besides the user's properties.
var coreAttrs = []string{
	"id", "name", "status", "tags", "container_format", "disk_format", "min_disk", "min_ram",
	"owner", "protected", "visibility", "os_hidden", "checksum", "size", "virtual_size",
	"created_at", "updated_at", "file", "schema", "self", "locations", "direct_url",
	"os_hash_algo", "os_hash_value", "stores", "properties", "metadata",
}

func reserved(key string) bool {
	return slices.Contains(coreAttrs, key) || strings.HasPrefix(key, "os_glance") ||
		strings.HasPrefix(key, "owner_specified.")
}

// errClass classifies a gophercloud error into an image error class, or
// returns nil when it has none.
func errClass(err error) error {
	var code gophercloud.ErrUnexpectedResponseCode
	switch {
	case gophercloud.ResponseCodeIs(err, http.StatusNotFound):
		return image.ErrNotFound
	case gophercloud.ResponseCodeIs(err, http.StatusConflict):
		return image.ErrAlreadyExists
	case gophercloud.ResponseCodeIs(err, http.StatusBadRequest):
		return image.ErrInvalidArgument
	case errors.As(err, &code) && code.GetStatusCode() >= 500:
		return image.ErrUnavailable
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return nil
	}
	var netErr net.Error
	var urlErr *url.Error
	if errors.As(err, &netErr) || errors.As(err, &urlErr) {
		return image.ErrUnavailable
	}
	return nil
}

// wrap adds the operation, the image ID and the error's class to err.
func wrap(op, id string, err error) error {
	if err == nil {
		return nil
	}
	if class := errClass(err); class != nil && !errors.Is(err, class) {
		return fmt.Errorf("glance: %s %s: %w: %w", op, id, class, err)
	}
	return fmt.Errorf("glance: %s %s: %w", op, id, err)
}

// metadata converts a Glance image.
func (s *Store) metadata(im *images.Image) image.Metadata {
	m := image.Metadata{
		ID:              im.ID,
		Name:            im.Name,
		ContainerFormat: im.ContainerFormat,
		DiskFormat:      im.DiskFormat,
		Size:            im.SizeBytes,
		Checksum:        im.Checksum,
		CreatedAt:       im.CreatedAt,
	}
	for k, v := range im.Properties {
		sv, ok := v.(string)
		if !ok || reserved(k) {
			continue
		}
		if k == s.shaProp {
			m.SHA256 = sv
			continue
		}
		if m.Properties == nil {
			m.Properties = make(map[string]string)
		}
		m.Properties[k] = sv
	}
	return m
}

// Stat returns the metadata of image id, or an error wrapping
// [image.ErrNotFound].
func (s *Store) Stat(ctx context.Context, id string) (image.Metadata, error) {
	im, err := s.get(ctx, id)
	if err != nil {
		return image.Metadata{}, err
	}
	return s.metadata(im), nil
}

func (s *Store) get(ctx context.Context, id string) (*images.Image, error) {
	if id == "" {
		return nil, fmt.Errorf("%w: empty image ID", image.ErrNotFound)
	}
	im, err := images.Get(ctx, s.sc, id).Extract()
	if err != nil {
		return nil, wrap("get", id, err)
	}
	return im, nil
}

// Open streams the data of image id (see the package documentation for
// what it verifies and refuses). The stream fails with ctx's error once
// ctx is done; the caller closes it.
func (s *Store) Open(ctx context.Context, id string) (io.ReadCloser, error) {
	im, err := s.get(ctx, id)
	if err != nil {
		return nil, err
	}
	if im.ContainerFormat != image.ContainerFormatDocker {
		return nil, fmt.Errorf("glance: open %s: %w: container format %q (want %q)", id, image.ErrUnsupportedFormat, im.ContainerFormat, image.ContainerFormatDocker)
	}
	switch im.Status {
	case images.ImageStatusActive:
	case images.ImageStatusQueued:
		return nil, fmt.Errorf("glance: open %s: %w: image is queued and has no data", id, image.ErrNotFound)
	case images.ImageStatusKilled, images.ImageStatusDeleted, images.ImageStatusPendingDelete:
		return nil, fmt.Errorf("glance: open %s: %w: image is %s", id, image.ErrNotFound, im.Status)
	default:
		return nil, fmt.Errorf("glance: open %s: %w: image is %s, not active", id, image.ErrUnavailable, im.Status)
	}
	body, err := imagedata.Download(ctx, s.sc, id).Extract()
	if gophercloud.ResponseCodeIs(err, http.StatusNoContent) {
		// The image lost its data between Get and Download (deleted, or
		// reset to queued).
		return nil, fmt.Errorf("glance: download %s: %w: image has no data: %w", id, image.ErrNotFound, err)
	}
	if err != nil {
		return nil, wrap("download", id, err)
	}
	m := s.metadata(im)
	digests := []image.Digest{
		{Name: "md5", Hash: md5.New(), Want: strings.ToLower(im.Checksum)},
		{Name: "sha256", Hash: sha256.New(), Want: strings.ToLower(m.SHA256)},
	}
	if algo, _ := im.Properties["os_hash_algo"].(string); algo == "sha512" {
		want, _ := im.Properties["os_hash_value"].(string)
		digests = append(digests, image.Digest{Name: "sha512", Hash: sha512.New(), Want: strings.ToLower(want)})
	}
	rc := readCloser{Reader: stream.WithContext(ctx, downloadReader{r: body, id: id}), Closer: body}
	return image.Verify(rc, im.SizeBytes, digests...), nil
}

type readCloser struct {
	io.Reader
	io.Closer
}

// downloadReader classifies a failure of the download stream itself (the
// connection to Glance broke, Glance died) as image.ErrUnavailable.
type downloadReader struct {
	r  io.Reader
	id string
}

func (d downloadReader) Read(p []byte) (int, error) {
	n, err := d.r.Read(p)
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
		err = fmt.Errorf("glance: download %s: %w: %w", d.id, image.ErrUnavailable, err)
	}
	return n, err
}

// listOpts adds property filters to images.ListOpts.
type listOpts struct {
	images.ListOpts
	props map[string]string
}

func (o listOpts) ToImageListQuery() (string, error) {
	q, err := o.ListOpts.ToImageListQuery()
	if err != nil || len(o.props) == 0 {
		return q, err
	}
	u, err := url.Parse(q)
	if err != nil {
		return "", err
	}
	v := u.Query()
	for k, val := range o.props {
		v.Set(k, val)
	}
	return "?" + v.Encode(), nil
}

// List returns the images that match opts. Glance filters by name and
// property; the store checks the result again.
func (s *Store) List(ctx context.Context, opts image.ListOptions) ([]image.Metadata, error) {
	lo := listOpts{ListOpts: images.ListOpts{Name: opts.Name, Limit: 100}, props: make(map[string]string)}
	for k, v := range opts.Properties {
		if reserved(k) {
			return nil, fmt.Errorf("%w: list filter on Glance attribute %q", image.ErrInvalidArgument, k)
		}
		lo.props[k] = v
	}
	var out []image.Metadata
	err := images.List(s.sc, lo).EachPage(ctx, func(_ context.Context, p pagination.Page) (bool, error) {
		ims, err := images.ExtractImages(p)
		if err != nil {
			return false, err
		}
		for i := range ims {
			if m := s.metadata(&ims[i]); opts.Match(m) {
				out = append(out, m)
			}
		}
		return true, nil
	})
	if err != nil {
		return nil, wrap("list", "images", err)
	}
	return out, nil
}

// hashingReader hashes and counts what is read through it and remembers
// the error of its source.
type hashingReader struct {
	r   io.Reader
	n   int64
	sha hash.Hash
	err error
}

func (h *hashingReader) Read(p []byte) (int, error) {
	n, err := h.r.Read(p)
	if n > 0 {
		h.n += int64(n)
		h.sha.Write(p[:n])
	}
	if err != nil && err != io.EOF {
		h.err = err
	}
	return n, err
}

// Create makes an image from meta and streams r into it. An empty meta.ID
// lets Glance choose a UUID; Glance wants UUIDs. An existing ID returns
// [image.ErrAlreadyExists], a container format other than "docker" (empty
// means docker and raw) [image.ErrUnsupportedFormat], and a property that
// is a Glance attribute [image.ErrInvalidArgument]. On any failure after
// the image was made, it is deleted again.
func (s *Store) Create(ctx context.Context, meta image.Metadata, r io.Reader) (image.Metadata, error) {
	meta, err := meta.ForCreate()
	if err != nil {
		return image.Metadata{}, fmt.Errorf("glance: create: %w", err)
	}
	props := make(map[string]string, len(meta.Properties))
	for k, v := range meta.Properties {
		if reserved(k) || k == s.shaProp {
			return image.Metadata{}, fmt.Errorf("glance: create: %w: property %q is reserved", image.ErrInvalidArgument, k)
		}
		props[k] = v
	}
	if err := ctx.Err(); err != nil {
		return image.Metadata{}, fmt.Errorf("glance: create: %w", err)
	}
	im, err := images.Create(ctx, s.sc, images.CreateOpts{
		ID:              meta.ID,
		Name:            meta.Name,
		ContainerFormat: meta.ContainerFormat,
		DiskFormat:      meta.DiskFormat,
		Properties:      props,
	}).Extract()
	if err != nil {
		id := meta.ID
		if id == "" {
			id = meta.Name
		}
		return image.Metadata{}, wrap("create", id, err)
	}
	id := im.ID
	m, err := s.upload(ctx, id, r)
	if err != nil {
		u := undo.Stack{StepTimeout: cleanupTimeout, Log: s.log, Op: "glance: create", ID: id}
		u.Push(func(ctx context.Context) error {
			if err := s.Delete(ctx, id); err != nil {
				return fmt.Errorf("glance: delete half-created image %s: %w", id, err)
			}
			return nil
		})
		return image.Metadata{}, u.Fail(ctx, err)
	}
	return m, nil
}

// upload streams r into the queued image id, checks the size Glance
// stored and records our sha256.
func (s *Store) upload(ctx context.Context, id string, r io.Reader) (image.Metadata, error) {
	hr := &hashingReader{r: stream.WithContext(ctx, r), sha: sha256.New()}
	if err := imagedata.Upload(ctx, s.sc, id, chunkedBody{hr}).ExtractErr(); err != nil {
		if hr.err != nil {
			return image.Metadata{}, fmt.Errorf("glance: upload %s: %w (%w)", id, hr.err, wrap("upload", id, err))
		}
		if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
			return image.Metadata{}, fmt.Errorf("glance: upload %s: %w (%w)", id, cerr, wrap("upload", id, err))
		}
		return image.Metadata{}, wrap("upload", id, err)
	}
	sum := hex.EncodeToString(hr.sha.Sum(nil))
	im, err := images.Update(ctx, s.sc, id, images.UpdateOpts{
		images.UpdateImageProperty{Op: images.AddOp, Name: s.shaProp, Value: sum},
	}).Extract()
	if err != nil {
		return image.Metadata{}, wrap("set sha256 of", id, err)
	}
	if im.SizeBytes != hr.n {
		return image.Metadata{}, fmt.Errorf("glance: upload %s: %w: glance stored %d bytes, sent %d", id, image.ErrChecksumMismatch, im.SizeBytes, hr.n)
	}
	s.log.Debug("glance: created image", "id", id, "size", hr.n)
	return s.metadata(im), nil
}

// uploadChunk is the size of the chunks an upload is sent in.
const uploadChunk = 1 << 20

// chunkedBody is an upload body that goes out in chunks of uploadChunk
// bytes. Having no Len or Seek, it is sent with chunked encoding, and
// nothing is buffered beyond one chunk. The HTTP transport copies a body
// through its WriteTo, one chunk per Write; a plain reader would go out
// in the transport's 32 KiB copy buffer, and glance-api, which parses
// every chunk and its socket reads in Python, spends measurably more CPU
// on small ones: on a machine where Glance's ingest is CPU-bound, that is
// upload time.
type chunkedBody struct{ r io.Reader }

func (b chunkedBody) Read(p []byte) (int, error) { return b.r.Read(p) }

// WriteTo copies b to w in chunks of uploadChunk bytes.
func (b chunkedBody) WriteTo(w io.Writer) (int64, error) {
	buf := make([]byte, uploadChunk)
	var total int64
	for {
		n, err := io.ReadFull(b.r, buf)
		if n > 0 {
			m, werr := w.Write(buf[:n])
			total += int64(m)
			if werr != nil {
				return total, werr
			}
		}
		switch {
		case err == io.EOF || err == io.ErrUnexpectedEOF:
			return total, nil
		case err != nil:
			return total, err
		}
	}
}

// Delete removes image id. A missing image is not an error.
func (s *Store) Delete(ctx context.Context, id string) error {
	if id == "" {
		return fmt.Errorf("glance: delete: %w: empty image ID", image.ErrInvalidArgument)
	}
	err := images.Delete(ctx, s.sc, id).ExtractErr()
	if err == nil || gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
		return nil
	}
	return wrap("delete", id, err)
}
