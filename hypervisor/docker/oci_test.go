package docker

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/client"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dockervisor/dockervisor/errclass"
	"github.com/dockervisor/dockervisor/hypervisor"
	"github.com/dockervisor/dockervisor/image"
	"github.com/dockervisor/dockervisor/image/engine"
	"github.com/dockervisor/dockervisor/image/glance"
	"github.com/dockervisor/dockervisor/image/localdir"
	"github.com/dockervisor/dockervisor/internal/testarchive"
	"github.com/dockervisor/dockervisor/internal/testenv"
)

// ociImage is an OCI archive written by the real skopeo, of an image whose
// own command prints marker and then waits.
type ociImage struct {
	data     []byte
	marker   string
	configID string // the engine image ID once loaded: "sha256:<config digest>"
}

func newOCIImage(t *testing.T, big int64, compression string) ociImage {
	t.Helper()
	spec := testarchive.New(t, big)
	marker := testenv.UniqueName("oci-")
	spec.Cmd = []string{"sh", "-c", "echo " + marker + "; trap 'exit 0' TERM; sleep 3600 & wait"}
	b, err := os.ReadFile(spec.OCIArchive(t, compression))
	require.NoError(t, err)
	return ociImage{data: b, marker: marker, configID: "sha256:" + ociConfigDigest(t, b)}
}

// tarFiles returns the regular files of a tar in order.
func tarFiles(t *testing.T, b []byte) (names []string, data map[string][]byte) {
	t.Helper()
	data = map[string][]byte{}
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return names, data
		}
		require.NoError(t, err)
		if hdr.Typeflag != tar.TypeReg {
			continue
		}
		c, err := io.ReadAll(tr)
		require.NoError(t, err)
		names = append(names, hdr.Name)
		data[hdr.Name] = c
	}
}

func writeTar(t *testing.T, names []string, data map[string][]byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, n := range names {
		d, ok := data[n]
		if !ok {
			continue
		}
		require.NoError(t, tw.WriteHeader(&tar.Header{Name: n, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(d))}))
		_, err := tw.Write(d)
		require.NoError(t, err)
	}
	require.NoError(t, tw.Close())
	return buf.Bytes()
}

// ociManifest returns the image manifest of an OCI archive (one image).
func ociManifest(t *testing.T, data map[string][]byte) (digest string, m struct {
	Config struct{ Digest string }
	Layers []struct{ Digest string }
}) {
	t.Helper()
	var idx struct{ Manifests []struct{ Digest string } }
	require.NoError(t, json.Unmarshal(data["index.json"], &idx))
	digest = strings.TrimPrefix(idx.Manifests[0].Digest, "sha256:")
	require.NoError(t, json.Unmarshal(data["blobs/sha256/"+digest], &m))
	return digest, m
}

func ociConfigDigest(t *testing.T, b []byte) string {
	_, data := tarFiles(t, b)
	_, m := ociManifest(t, data)
	return strings.TrimPrefix(m.Config.Digest, "sha256:")
}

// removeEngineImageAtEnd removes an engine image by ID when t ends.
func (e *env) removeEngineImageAtEnd(id string) {
	e.t.Cleanup(func() {
		e.destroyAll()
		_, err := e.cli.ImageRemove(context.WithoutCancel(e.t.Context()), id, client.ImageRemoveOptions{Force: true, PruneChildren: true})
		if err != nil && !isNotFound(err) {
			e.t.Errorf("cleanup: remove %s: %v", id, err)
		}
	})
}

// waitConsole waits until the instance's console shows want.
func (e *env) waitConsole(id, want string) {
	e.t.Helper()
	require.Eventually(e.t, func() bool {
		out, err := e.drv.ConsoleOutput(e.t.Context(), id, hypervisor.ConsoleOptions{})
		return err == nil && string(out) == want+"\n"
	}, 10*time.Second, 50*time.Millisecond, "the image's own command prints %s", want)
}

// TestSpawnFromOCIArchive spawns from OCI archives made by the real skopeo
// (one gzip layer; two gzip layers) through a localdir store and through
// the real Glance: each image's own command runs, the image is fetched
// once (two reads of the archive) and cached under its store tag.
func TestSpawnFromOCIArchive(t *testing.T) {
	testenv.MustHaveDocker(t)
	testenv.MustHaveSkopeo(t)
	ld, err := localdir.New(t.TempDir())
	require.NoError(t, err)
	gs, err := glance.NewNoAuth(testenv.MustHaveGlance(t))
	require.NoError(t, err)
	stores := []struct {
		name  string
		store image.Store
	}{{"localdir", ld}, {"glance", gs}}
	images := []struct {
		name string
		big  int64
	}{{"one layer", 0}, {"two layers", 2 << 20}}
	for _, st := range stores {
		for _, im := range images {
			t.Run(st.name+"/"+im.name, func(t *testing.T) {
				ctx := t.Context()
				oci := newOCIImage(t, im.big, testarchive.Gzip)
				m, err := st.store.Create(ctx, image.Metadata{Name: "dockervisor-test-" + oci.marker}, bytes.NewReader(oci.data))
				require.NoError(t, err)
				t.Cleanup(func() { // last: after the instances and the tag
					assert.NoError(t, st.store.Delete(context.WithoutCancel(t.Context()), m.ID))
				})
				// The store serves the archive as it was stored.
				rc, err := st.store.Open(ctx, m.ID)
				require.NoError(t, err)
				served, err := io.ReadAll(rc)
				rc.Close()
				require.NoError(t, err)
				require.Equal(t, oci.data, served)

				counting := &countingStore{Store: st.store}
				e := storeEnv(t, counting)
				e.removeStoreTagAtEnd(m.ID)
				e.removeEngineImageAtEnd(oci.configID)
				spec := e.spec("o1")
				spec.Image, spec.Command = m.ID, nil
				e.spawn(spec)
				e.waitConsole("o1", oci.marker)
				assert.EqualValues(t, 2, counting.opens.Load(), "an OCI archive is read twice")
				got, err := e.cli.ImageInspect(ctx, engine.TagFor(m.ID))
				require.NoError(t, err)
				assert.Equal(t, oci.configID, got.ID)

				spec2 := e.spec("o2")
				spec2.Image, spec2.Command = m.ID, nil
				e.spawn(spec2)
				e.waitConsole("o2", oci.marker)
				assert.EqualValues(t, 2, counting.opens.Load(), "the second spawn uses the cached image")
			})
		}
	}
}

// TestSpawnFromOCIArchiveRefreshed: a store image replaced by another OCI
// archive under the same ID is fetched again; the old engine image goes.
func TestSpawnFromOCIArchiveRefreshed(t *testing.T) {
	testenv.MustHaveDocker(t)
	testenv.MustHaveSkopeo(t)
	ld, err := localdir.New(t.TempDir())
	require.NoError(t, err)
	ctx := t.Context()
	e := storeEnv(t, ld)
	id := testenv.UniqueName("refresh-")
	e.removeStoreTagAtEnd(id)
	for i := range 2 {
		oci := newOCIImage(t, 0, testarchive.Gzip)
		e.removeEngineImageAtEnd(oci.configID)
		require.NoError(t, ld.Delete(ctx, id))
		_, err := ld.Create(ctx, image.Metadata{ID: id}, bytes.NewReader(oci.data))
		require.NoError(t, err)
		spec := e.spec(fmt.Sprint("r", i))
		spec.Image, spec.Command = id, nil
		e.spawn(spec)
		e.waitConsole(spec.ID, oci.marker)
		got, err := e.cli.ImageInspect(ctx, engine.TagFor(id))
		require.NoError(t, err)
		assert.Equal(t, oci.configID, got.ID, "the tag names the new version")
		require.NoError(t, e.drv.Destroy(ctx, spec.ID))
	}
}

// requireOneClass requires err to be an *OpError wrapping exactly one
// hypervisor class.
func requireOneClass(t *testing.T, err error, want error) {
	t.Helper()
	require.Error(t, err)
	var oe *hypervisor.OpError
	require.ErrorAs(t, err, &oe)
	have := errclass.Matching(err)
	require.Len(t, have, 1, "error %q wraps %v", err, have)
	if want != nil {
		require.ErrorIs(t, err, want)
	}
	if errors.Is(err, hypervisor.ErrInvalidState) {
		_, ok := errors.AsType[*hypervisor.StateError](err)
		require.True(t, ok, "ErrInvalidState without *StateError: %v", err)
	}
}

// TestSpawnFromBadOCIArchive: archives the engine cannot load are refused
// with ErrInvalidArgument (wrapping image.ErrUnsupportedFormat), data
// changed in the store with ErrCorrupt (image.ErrChecksumMismatch), and
// they leave no container, no tag and no image.
func TestSpawnFromBadOCIArchive(t *testing.T) {
	testenv.MustHaveDocker(t)
	testenv.MustHaveSkopeo(t)
	ld, err := localdir.New(t.TempDir())
	require.NoError(t, err)
	e := storeEnv(t, ld)
	ctx := t.Context()
	gz := newOCIImage(t, 1<<20, testarchive.Gzip)
	plain := newOCIImage(t, 1<<20, testarchive.Plain)
	zstd := newOCIImage(t, 0, testarchive.Zstd)
	edit := func(base ociImage, f func(data map[string][]byte, manifest string, layers []string)) []byte {
		names, data := tarFiles(t, base.data)
		md, m := ociManifest(t, data)
		var layers []string
		for _, l := range m.Layers {
			layers = append(layers, "blobs/sha256/"+strings.TrimPrefix(l.Digest, "sha256:"))
		}
		f(data, md, layers)
		return writeTar(t, names, data)
	}
	cases := []struct {
		name    string
		base    ociImage
		data    []byte
		onDisk  bool // corrupt the stored file after Create
		classes []error
	}{
		{"zstd layers", zstd, zstd.data, false, []error{image.ErrUnsupportedFormat}},
		{"truncated", gz, gz.data[:len(gz.data)*2/3], false, []error{image.ErrUnsupportedFormat}},
		{"corrupt layer", plain, edit(plain, func(d map[string][]byte, _ string, layers []string) {
			b := bytes.Clone(d[layers[1]])
			b[len(b)/2] ^= 0xff
			d[layers[1]] = b
		}), false, []error{image.ErrUnsupportedFormat}},
		{"no image for this platform", gz, edit(gz, func(d map[string][]byte, md string, _ []string) {
			d["index.json"] = []byte(fmt.Sprintf(`{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%d,"platform":{"os":"linux","architecture":"riscv64"}}]}`, md, len(d["blobs/sha256/"+md])))
		}), false, []error{image.ErrUnsupportedFormat}},
		{"missing blob", gz, edit(gz, func(d map[string][]byte, _ string, layers []string) { delete(d, layers[0]) }), false, []error{image.ErrUnsupportedFormat}},
		{"unknown layout version", gz, edit(gz, func(d map[string][]byte, _ string, _ []string) {
			d["oci-layout"] = []byte(`{"imageLayoutVersion":"9.9.9"}`)
		}), false, []error{image.ErrUnsupportedFormat}},
		{"corrupted in the store", gz, gz.data, true, []error{image.ErrChecksumMismatch}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m, err := ld.Create(ctx, image.Metadata{}, bytes.NewReader(tc.data))
			require.NoError(t, err)
			if tc.onDisk {
				p, err := ld.Path(m.ID)
				require.NoError(t, err)
				f, err := os.OpenFile(p, os.O_RDWR, 0)
				require.NoError(t, err)
				_, err = f.WriteAt([]byte{0xff, 0xfe}, int64(len(tc.data)/2))
				require.NoError(t, err)
				require.NoError(t, f.Close())
			}
			e.removeStoreTagAtEnd(m.ID)
			e.removeEngineImageAtEnd(tc.base.configID)
			spec := e.spec("bad")
			spec.Image, spec.Command = m.ID, nil
			_, err = e.drv.Spawn(ctx, spec)
			want := hypervisor.ErrInvalidArgument
			if tc.onDisk {
				want = hypervisor.ErrCorrupt // the store's data changed
			}
			requireOneClass(t, err, want)
			for _, c := range tc.classes {
				require.ErrorIs(t, err, c)
			}
			t.Logf("%v", err)
			assert.Zero(t, e.containersNamed(e.drv.containerName("bad")), "no container")
			assert.False(t, e.hasTag(engine.TagFor(m.ID)), "no tag")
			_, ierr := e.cli.ImageInspect(ctx, tc.base.configID)
			assert.True(t, isNotFound(ierr), "no image: %v", ierr)
		})
	}
}

// faultyTransport passes requests to the engine's socket, records their
// paths, and answers request number failAt (1-based) with an HTTP 500 the
// engine might send, without passing it on.
type faultyTransport struct {
	base   http.RoundTripper
	mu     sync.Mutex
	n      int
	failAt int
	paths  []string
}

func (f *faultyTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	f.mu.Lock()
	f.n++
	n := f.n
	f.paths = append(f.paths, r.Method+" "+r.URL.Path)
	f.mu.Unlock()
	if n == f.failAt {
		if r.Body != nil {
			r.Body.Close()
		}
		body := `{"message":"injected fault"}`
		return &http.Response{StatusCode: http.StatusInternalServerError, Status: "500 Internal Server Error", Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
			Header: http.Header{"Content-Type": {"application/json"}}, Body: io.NopCloser(strings.NewReader(body)), ContentLength: int64(len(body)), Request: r}, nil
	}
	return f.base.RoundTrip(r)
}

func (f *faultyTransport) reset(failAt int) {
	f.mu.Lock()
	f.n, f.failAt, f.paths = 0, failAt, nil
	f.mu.Unlock()
}

func (f *faultyTransport) requests() (int, []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.n, append([]string(nil), f.paths...)
}

// faultyClient returns an engine client whose requests go through a
// faultyTransport.
func faultyClient(t *testing.T) (*client.Client, *faultyTransport) {
	real := testenv.MustHaveDocker(t)
	sock, ok := strings.CutPrefix(real.DaemonHost(), "unix://")
	if !ok {
		t.Skipf("engine at %s is not on a unix socket", real.DaemonHost())
	}
	ft := &faultyTransport{base: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", sock)
	}}}
	cli, err := client.New(client.WithHost(real.DaemonHost()), client.WithHTTPClient(&http.Client{Transport: ft}))
	require.NoError(t, err)
	t.Cleanup(func() { cli.Close() })
	return cli, ft
}

// TestSpawnEveryFailurePathHasOneClass fails each engine request a Spawn
// makes in turn (an HTTP 500, which no engine error class covers) — for a
// spawn from an engine image and for one from an OCI store image, fetch
// included — and requires every error to be an *OpError with exactly one
// hypervisor class, and nothing left behind. It also checks the input
// errors: bad specs, bad references, missing and malformed store IDs.
func TestSpawnEveryFailurePathHasOneClass(t *testing.T) {
	testenv.MustHaveSkopeo(t)
	cli, ft := faultyClient(t)
	ctx := t.Context()
	ld, err := localdir.New(t.TempDir())
	require.NoError(t, err)
	oci := newOCIImage(t, 0, testarchive.Gzip)

	plain := newEnv(t, WithAPIClient(cli))
	store := newEnv(t, WithAPIClient(cli), WithImageStore(ld))
	store.removeEngineImageAtEnd(oci.configID)
	newStoreImage := func() string {
		m, err := ld.Create(ctx, image.Metadata{}, bytes.NewReader(oci.data))
		require.NoError(t, err)
		store.removeStoreTagAtEnd(m.ID)
		return m.ID
	}

	for _, flavour := range []struct {
		name  string
		e     *env
		image func() string
	}{
		{"engine image", plain, func() string { return plain.image }},
		{"OCI store image", store, newStoreImage},
	} {
		t.Run(flavour.name, func(t *testing.T) {
			e := flavour.e
			// Count the requests of a successful spawn (after the driver's
			// first-use ping).
			spec := e.spec("count")
			spec.Image = flavour.image()
			_, err := e.drv.Info(ctx, "warm-up") // connect first
			require.ErrorIs(t, err, hypervisor.ErrNotFound)
			ft.reset(0)
			e.spawn(spec)
			total, paths := ft.requests()
			require.NoError(t, e.drv.Destroy(ctx, spec.ID))
			t.Logf("a spawn makes %d engine requests: %v", total, paths)
			require.Greater(t, total, 3)
			for i := 1; i <= total; i++ {
				spec := e.spec(fmt.Sprint("f", i))
				spec.Image = flavour.image()
				ft.reset(i)
				_, err := e.drv.Spawn(ctx, spec)
				ft.reset(0)
				_, paths := ft.requests()
				if err == nil {
					t.Logf("request %d failing did not fail the spawn", i)
					require.NoError(t, e.drv.Destroy(ctx, spec.ID))
					continue
				}
				requireOneClass(t, err, nil)
				assert.Zero(t, e.containersNamed(e.drv.containerName(spec.ID)), "request %d: no container left", i)
				_ = paths
			}
		})
	}

	t.Run("input errors", func(t *testing.T) {
		// A container the engine has: its ID must not reach the
		// container endpoints through an image reference.
		victim := plain.spec("victim")
		plain.spawn(victim)
		cid := plain.inspect(victim.ID).ID
		cases := []struct {
			name  string
			e     *env
			image string
			class error
		}{
			{"path into the container endpoints", plain, "../containers/" + cid, hypervisor.ErrInvalidArgument},
			{"path with a query", plain, "busybox?x=1", hypervisor.ErrInvalidArgument},
			{"upper-case reference", plain, "BusyBox:1", hypervisor.ErrInvalidArgument},
			{"missing engine image", plain, "dockervisor-test/none:" + testenv.UniqueName("x"), hypervisor.ErrImageNotFound},
			{"missing store image", store, "no-such-image", hypervisor.ErrImageNotFound},
			{"malformed store image ID", store, "../etc/passwd", hypervisor.ErrInvalidArgument},
		}
		for _, tc := range cases {
			spec := tc.e.spec("in")
			spec.Image = tc.image
			ft.reset(0)
			_, err := tc.e.drv.Spawn(ctx, spec)
			requireOneClass(t, err, tc.class)
			_, paths := ft.requests()
			for _, p := range paths {
				assert.NotContains(t, p, cid, "%s: the container's endpoint was reached", tc.name)
			}
		}
		spec := plain.spec("victim")
		spec.ID = victim.ID
		_, err := plain.drv.Spawn(ctx, spec)
		requireOneClass(t, err, hypervisor.ErrAlreadyExists)
		spec.ID = "Bad ID!"
		_, err = plain.drv.Spawn(ctx, spec)
		requireOneClass(t, err, hypervisor.ErrInvalidArgument)

		closed := newEnv(t, WithAPIClient(cli))
		require.NoError(t, closed.drv.Close())
		_, err = closed.drv.Spawn(ctx, closed.spec("closed"))
		requireOneClass(t, err, hypervisor.ErrUnavailable)
	})
}
