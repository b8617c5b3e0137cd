package glance_test

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/imagedata"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/images"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dockervisor/dockervisor/image"
	"github.com/dockervisor/dockervisor/image/glance"
	"github.com/dockervisor/dockervisor/image/imagetest"
	"github.com/dockervisor/dockervisor/internal/testenv"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testenv.StopGlance()
	os.Exit(code)
}

// corruptible damages image data in the private Glance's file store.
type corruptible struct {
	*glance.Store
	dataDir string
}

func (c corruptible) Corrupt(_ context.Context, id string) error {
	f, err := os.OpenFile(filepath.Join(c.dataDir, id), os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, 10); err != nil {
		return err
	}
	b[0] ^= 0x01
	_, err = f.WriteAt(b, 10)
	return err
}

func newRealStore(t *testing.T) *glance.Store {
	t.Helper()
	s, err := glance.NewNoAuth(testenv.MustHaveGlance(t))
	require.NoError(t, err)
	return s
}

// TestConformance runs the store suite against a real glance-api.
func TestConformance(t *testing.T) {
	imagetest.TestStore(t, func(t *testing.T) image.Store {
		return corruptible{Store: newRealStore(t), dataDir: testenv.GlanceDataDir(t)}
	})
}

// rawClient is a gophercloud client of the private Glance, for making
// images the store would refuse to make.
func rawClient(t *testing.T) *gophercloud.ServiceClient {
	ep := testenv.MustHaveGlance(t)
	return &gophercloud.ServiceClient{ProviderClient: &gophercloud.ProviderClient{}, Endpoint: ep, ResourceBase: ep + "v2/", Type: "image"}
}

func rawImage(t *testing.T, opts images.CreateOpts, data []byte) string {
	t.Helper()
	sc := rawClient(t)
	im, err := images.Create(t.Context(), sc, opts).Extract()
	require.NoError(t, err)
	t.Cleanup(func() {
		err := images.Delete(context.WithoutCancel(t.Context()), sc, im.ID).ExtractErr()
		if err != nil && !gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
			t.Errorf("cleanup: delete image %s: %v", im.ID, err)
		}
	})
	if data != nil {
		require.NoError(t, imagedata.Upload(t.Context(), sc, im.ID, bytes.NewReader(data)).ExtractErr())
	}
	return im.ID
}

func TestOpenRefuses(t *testing.T) {
	s := newRealStore(t)
	tests := []struct {
		name string
		opts images.CreateOpts
		data []byte
		want error
	}{
		{"bare qcow2 image", images.CreateOpts{Name: "bare", ContainerFormat: "bare", DiskFormat: "qcow2"}, []byte("not a docker archive"), image.ErrUnsupportedFormat},
		{"queued docker image without data", images.CreateOpts{Name: "queued", ContainerFormat: "docker", DiskFormat: "raw"}, nil, image.ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := rawImage(t, tt.opts, tt.data)
			rc, err := s.Open(t.Context(), id)
			if rc != nil {
				rc.Close()
			}
			require.ErrorIs(t, err, tt.want)
			m, err := s.Stat(t.Context(), id)
			require.NoError(t, err, "Stat works for any image")
			assert.Equal(t, tt.opts.ContainerFormat, m.ContainerFormat)
		})
	}
}

func TestImageWithoutSHA256Property(t *testing.T) {
	// Images uploaded by other tools have no sha256 property: Open still
	// verifies Glance's md5 and sha512.
	s := newRealStore(t)
	data := []byte(strings.Repeat("docker archive ", 1000))
	id := rawImage(t, images.CreateOpts{Name: "other-tool", ContainerFormat: "docker", DiskFormat: "raw"}, data)
	m, err := s.Stat(t.Context(), id)
	require.NoError(t, err)
	assert.Empty(t, m.SHA256)
	assert.NotEmpty(t, m.Checksum)
	rc, err := s.Open(t.Context(), id)
	require.NoError(t, err)
	defer rc.Close()
	var buf bytes.Buffer
	_, err = buf.ReadFrom(rc)
	require.NoError(t, err)
	assert.Equal(t, data, buf.Bytes())
}

func TestCreateRejects(t *testing.T) {
	s := newRealStore(t)
	tests := []struct {
		name string
		meta image.Metadata
		want error
	}{
		{"reserved property", image.Metadata{Name: "x", Properties: map[string]string{"status": "active"}}, image.ErrInvalidArgument},
		{"our sha256 property", image.Metadata{Name: "x", Properties: map[string]string{glance.DefaultSHA256Property: "0"}}, image.ErrInvalidArgument},
		{"ID that is not a UUID", image.Metadata{ID: "not-a-uuid", Name: "x"}, image.ErrInvalidArgument},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := s.Create(t.Context(), tt.meta, strings.NewReader("x"))
			require.ErrorIs(t, err, tt.want)
		})
	}
}

// TestErrorClasses checks the mapping of HTTP and connection failures, with
// an httptest server standing in for a broken Glance.
func TestErrorClasses(t *testing.T) {
	tests := []struct {
		name   string
		status int
		want   error
	}{
		{"404", http.StatusNotFound, image.ErrNotFound},
		{"409", http.StatusConflict, image.ErrAlreadyExists},
		{"400", http.StatusBadRequest, image.ErrInvalidArgument},
		{"500", http.StatusInternalServerError, image.ErrUnavailable},
		{"503", http.StatusServiceUnavailable, image.ErrUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/html")
				w.WriteHeader(tt.status)
				_, _ = w.Write([]byte("<html><body>glance says no</body></html>"))
			}))
			t.Cleanup(srv.Close)
			s, err := glance.NewNoAuth(srv.URL)
			require.NoError(t, err)
			_, err = s.Stat(t.Context(), "0c3a2c4e-7a65-4d4c-9b1e-2f3c0a9c1f10")
			require.ErrorIs(t, err, tt.want)
			var code gophercloud.ErrUnexpectedResponseCode
			require.ErrorAs(t, err, &code, "the gophercloud error stays in the chain")
			assert.Contains(t, string(code.Body), "glance says no")
		})
	}
	t.Run("connection refused", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		addr := l.Addr().String()
		require.NoError(t, l.Close())
		s, err := glance.NewNoAuth("http://" + addr + "/")
		require.NoError(t, err)
		_, err = s.List(t.Context(), image.ListOptions{})
		require.ErrorIs(t, err, image.ErrUnavailable)
	})
}

func TestConstructors(t *testing.T) {
	_, err := glance.New(nil)
	assert.ErrorIs(t, err, image.ErrInvalidArgument)
	for _, ep := range []string{"", "127.0.0.1:9292", "ftp://x/", "http://"} {
		_, err := glance.NewNoAuth(ep)
		assert.ErrorIs(t, err, image.ErrInvalidArgument, ep)
	}
	_, err = glance.NewNoAuth("http://127.0.0.1:9292", glance.WithSHA256Property("checksum"))
	assert.ErrorIs(t, err, image.ErrInvalidArgument)
	_, err = glance.New(&gophercloud.ServiceClient{ProviderClient: &gophercloud.ProviderClient{}}, glance.WithHTTPClient(http.DefaultClient))
	assert.ErrorIs(t, err, image.ErrInvalidArgument)
}
