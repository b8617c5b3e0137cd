package engine_test

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/moby/moby/client"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dockervisor/dockervisor/image"
	"github.com/dockervisor/dockervisor/image/engine"
	"github.com/dockervisor/dockervisor/image/localdir"
	"github.com/dockervisor/dockervisor/internal/testarchive"
	"github.com/dockervisor/dockervisor/internal/testenv"
)

// ociEntry is one file of an archive held in memory by the tests.
type ociEntry struct {
	name string
	typ  byte
	data []byte
}

func readEntries(t *testing.T, archive []byte) []ociEntry {
	t.Helper()
	var out []ociEntry
	tr := tar.NewReader(bytes.NewReader(archive))
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		require.NoError(t, err)
		b, err := io.ReadAll(tr)
		require.NoError(t, err)
		out = append(out, ociEntry{strings.TrimPrefix(hdr.Name, "./"), hdr.Typeflag, b})
	}
}

func writeEntries(t *testing.T, entries []ociEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		hdr := &tar.Header{Name: e.name, Typeflag: e.typ, Mode: 0o644, Size: int64(len(e.data))}
		if e.typ == tar.TypeDir {
			hdr.Mode, hdr.Size = 0o755, 0
		}
		require.NoError(t, tw.WriteHeader(hdr))
		_, err := tw.Write(e.data)
		require.NoError(t, err)
	}
	require.NoError(t, tw.Close())
	return buf.Bytes()
}

// ociLayout is an OCI archive opened up for inspection and rewriting.
type ociLayout struct {
	entries  []ociEntry
	index    map[string]any
	manifest map[string]any // the one image manifest
	manifestDigest,
	configDigest string
	layers []string // layer digests (hex)
}

func blobHex(d any) string { return strings.TrimPrefix(d.(string), "sha256:") }

func openLayout(t *testing.T, archive []byte) *ociLayout {
	t.Helper()
	l := &ociLayout{entries: readEntries(t, archive)}
	require.NoError(t, json.Unmarshal(l.file(t, "index.json"), &l.index))
	m := l.index["manifests"].([]any)[0].(map[string]any)
	l.manifestDigest = blobHex(m["digest"])
	require.NoError(t, json.Unmarshal(l.file(t, "blobs/sha256/"+l.manifestDigest), &l.manifest))
	l.configDigest = blobHex(l.manifest["config"].(map[string]any)["digest"])
	for _, ld := range l.manifest["layers"].([]any) {
		l.layers = append(l.layers, blobHex(ld.(map[string]any)["digest"]))
	}
	return l
}

func (l *ociLayout) file(t *testing.T, name string) []byte {
	for _, e := range l.entries {
		if e.name == name {
			return e.data
		}
	}
	t.Fatalf("no %s in the archive", name)
	return nil
}

// set replaces (or appends) a file.
func (l *ociLayout) set(name string, data []byte) {
	for i, e := range l.entries {
		if e.name == name {
			l.entries[i].data = data
			return
		}
	}
	l.entries = append(l.entries, ociEntry{name, tar.TypeReg, data})
}

func (l *ociLayout) drop(name string) {
	l.entries = slicesDelete(l.entries, func(e ociEntry) bool { return e.name == name })
}

func slicesDelete(es []ociEntry, del func(ociEntry) bool) []ociEntry {
	var out []ociEntry
	for _, e := range es {
		if !del(e) {
			out = append(out, e)
		}
	}
	return out
}

// addBlob adds a JSON blob and returns its digest hex.
func (l *ociLayout) addBlob(t *testing.T, v any) (string, int) {
	b, err := json.Marshal(v)
	require.NoError(t, err)
	sum := sha256.Sum256(b)
	h := hex.EncodeToString(sum[:])
	// Blobs first, as skopeo writes them.
	l.entries = append([]ociEntry{{"blobs/sha256/" + h, tar.TypeReg, b}}, l.entries...)
	return h, len(b)
}

func (l *ociLayout) setIndex(t *testing.T, manifests ...any) {
	b, err := json.Marshal(map[string]any{"schemaVersion": 2, "manifests": manifests})
	require.NoError(t, err)
	l.set("index.json", b)
}

// setManifest replaces the image manifest (and the index entry naming it).
func (l *ociLayout) setManifest(t *testing.T, edit func(m map[string]any)) {
	edit(l.manifest)
	h, n := l.addBlob(t, l.manifest)
	l.drop("blobs/sha256/" + l.manifestDigest)
	l.manifestDigest = h
	l.setIndex(t, map[string]any{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:" + h, "size": n})
}

func (l *ociLayout) bytes(t *testing.T) []byte { return writeEntries(t, l.entries) }

// skopeoArchive returns an OCI archive made by the real skopeo from a
// synthetic image, and the image's spec.
func skopeoArchive(t *testing.T, big int64, compression string) ([]byte, *testarchive.Spec) {
	t.Helper()
	spec := testarchive.New(t, big)
	b, err := os.ReadFile(spec.OCIArchive(t, compression))
	require.NoError(t, err)
	return b, spec
}

// countingOpener opens archive from memory and counts the opens.
func countingOpener(archive []byte, n *atomic.Int32) engine.Opener {
	return func(context.Context) (io.ReadCloser, error) {
		n.Add(1)
		return io.NopCloser(bytes.NewReader(archive)), nil
	}
}

// storeOpener stores archive in a localdir store and opens it as the
// Docker backend does: the store's stream, verified against its sha256.
func storeOpener(t *testing.T, archive []byte) (engine.Opener, image.Metadata) {
	t.Helper()
	s, err := localdir.New(t.TempDir())
	require.NoError(t, err)
	meta, err := s.Create(t.Context(), image.Metadata{Name: "oci"}, bytes.NewReader(archive))
	require.NoError(t, err)
	return func(ctx context.Context) (io.ReadCloser, error) {
		rc, err := s.Open(ctx, meta.ID)
		if err != nil {
			return nil, err
		}
		return image.Verify(rc, meta.Size, image.Digest{Name: "sha256", Hash: sha256.New(), Want: meta.SHA256}), nil
	}, meta
}

// TestLoadFromOCI loads OCI archives written by the real skopeo (and
// layouts derived from them: both layouts in one archive, a nested
// multi-platform index) from a localdir store into the real engine.
func TestLoadFromOCI(t *testing.T) {
	cli := testenv.MustHaveDocker(t)
	testenv.MustHaveSkopeo(t)
	type tc struct {
		name        string
		big         int64
		compression string
		edit        func(t *testing.T, l *ociLayout)
	}
	tests := []tc{
		{"one layer, gzip", 0, testarchive.Gzip, nil},
		{"two layers, gzip", 1 << 20, testarchive.Gzip, nil},
		{"two layers, uncompressed", 1 << 20, testarchive.Plain, nil},
		{"both layouts (docker save of newer engines)", 1 << 20, testarchive.Gzip, func(t *testing.T, l *ociLayout) {
			layers := make([]string, len(l.layers))
			for i, h := range l.layers {
				layers[i] = "blobs/sha256/" + h
			}
			b, err := json.Marshal([]map[string]any{{"Config": "blobs/sha256/" + l.configDigest, "RepoTags": []string{"dockervisor-test/leak:both"}, "Layers": layers}})
			require.NoError(t, err)
			l.set("manifest.json", b)
			l.set("repositories", []byte(`{"dockervisor-test/leak":{"both":"x"}}`))
		}},
		{"nested multi-platform index", 0, testarchive.Gzip, func(t *testing.T, l *ociLayout) {
			m := l.index["manifests"].([]any)[0].(map[string]any)
			m["platform"] = map[string]any{"os": "linux", "architecture": "amd64"}
			other := map[string]any{"mediaType": "application/vnd.oci.image.manifest.v1+json", "size": 405,
				"digest":   "sha256:" + strings.Repeat("ab", 32),
				"platform": map[string]any{"os": "linux", "architecture": "arm64", "variant": "v8"}}
			h, n := l.addBlob(t, map[string]any{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": []any{other, m}})
			l.setIndex(t, map[string]any{"mediaType": "application/vnd.oci.image.index.v1+json", "digest": "sha256:" + h, "size": n})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.name == "nested multi-platform index" && runtime.GOARCH != "amd64" {
				t.Skip("the derived index names an amd64 image")
			}
			archive, spec := skopeoArchive(t, tt.big, tt.compression)
			l := openLayout(t, archive)
			if tt.edit != nil {
				tt.edit(t, l)
				archive = l.bytes(t)
			}
			open, meta := storeOpener(t, archive)
			var opens atomic.Int32
			counted := func(ctx context.Context) (io.ReadCloser, error) { opens.Add(1); return open(ctx) }
			tag := engine.TagFor(meta.ID)
			wantID := "sha256:" + l.configDigest
			removeOnCleanup(t, cli, tag)
			removeOnCleanup(t, cli, wantID)
			removeOnCleanup(t, cli, "dockervisor-test/leak:both")

			id, err := engine.LoadFrom(t.Context(), cli, counted, tag, engine.LoadOptions{})
			require.NoError(t, err)
			assert.Equal(t, wantID, id)
			assert.EqualValues(t, 2, opens.Load(), "an OCI layout is read twice")
			got, err := cli.ImageInspect(t.Context(), tag)
			require.NoError(t, err)
			assert.Equal(t, id, got.ID)
			assert.Equal(t, []string{tag}, got.RepoTags, "only the deterministic tag")
			assert.Equal(t, spec.Label(), got.Config.Labels["dockervisor.test"])
			assert.Len(t, got.RootFS.Layers, len(l.layers))
			assertNoImage(t, cli, "dockervisor-test/leak:both", spec.RepoTag)

			// Loading again is a no-op.
			id2, err := engine.LoadFrom(t.Context(), cli, open, tag, engine.LoadOptions{})
			require.NoError(t, err)
			assert.Equal(t, id, id2)
		})
	}
}

// TestLoadFromDockerSave: a docker-save archive is read once by LoadFrom.
func TestLoadFromDockerSave(t *testing.T) {
	cli := testenv.MustHaveDocker(t)
	spec := testarchive.New(t, 1<<20)
	tag := newTag()
	removeOnCleanup(t, cli, tag)
	removeOnCleanup(t, cli, spec.RepoTag)
	var opens atomic.Int32
	id, err := engine.LoadFrom(t.Context(), cli, countingOpener(spec.Bytes(t), &opens), tag, engine.LoadOptions{})
	require.NoError(t, err)
	assert.Equal(t, spec.ImageID(), id)
	assert.EqualValues(t, 1, opens.Load())
	assertNoImage(t, cli, spec.RepoTag)
}

// guardAPI passes calls on to the real engine and records them.
type guardAPI struct {
	engine.LoadAPI
	mu    sync.Mutex
	calls []string
}

func (g *guardAPI) record(op string) {
	g.mu.Lock()
	g.calls = append(g.calls, op)
	g.mu.Unlock()
}

func (g *guardAPI) ImageLoad(ctx context.Context, r io.Reader, opts ...client.ImageLoadOption) (client.ImageLoadResult, error) {
	g.record("load")
	return g.LoadAPI.ImageLoad(ctx, r, opts...)
}

func (g *guardAPI) ImageInspect(ctx context.Context, ref string, opts ...client.ImageInspectOption) (client.ImageInspectResult, error) {
	g.record("inspect")
	return g.LoadAPI.ImageInspect(ctx, ref, opts...)
}

func (g *guardAPI) ImageTag(ctx context.Context, opts client.ImageTagOptions) (client.ImageTagResult, error) {
	g.record("tag")
	return g.LoadAPI.ImageTag(ctx, opts)
}

// TestLoadFromOCIRefused: what the engine cannot load is refused with
// image.ErrUnsupportedFormat before any engine call; a corrupt layer found
// while streaming aborts the load. Nothing is left on the engine.
func TestLoadFromOCIRefused(t *testing.T) {
	cli := testenv.MustHaveDocker(t)
	testenv.MustHaveSkopeo(t)
	gz, _ := skopeoArchive(t, 1<<20, testarchive.Gzip)
	plain, _ := skopeoArchive(t, 1<<20, testarchive.Plain)
	zstd, _ := skopeoArchive(t, 0, testarchive.Zstd)
	edit := func(t *testing.T, base []byte, f func(l *ociLayout)) ([]byte, string) {
		l := openLayout(t, base)
		f(l)
		return l.bytes(t), l.configDigest
	}
	tests := []struct {
		name     string
		archive  func(t *testing.T) ([]byte, string)
		platform string
		message  string
		streamed bool // found while streaming, not before
		want     error
	}{
		{name: "zstd layers (skopeo)", archive: func(t *testing.T) ([]byte, string) { return zstd, openLayout(t, zstd).configDigest },
			message: "zstd-compressed"},
		{name: "no image for the platform (config)", platform: "linux/s390x", message: "no image for platform linux/s390x",
			archive: func(t *testing.T) ([]byte, string) { return gz, openLayout(t, gz).configDigest }},
		{name: "no image for the platform (index)", message: "no image for platform", archive: func(t *testing.T) ([]byte, string) {
			return edit(t, gz, func(l *ociLayout) {
				m := l.index["manifests"].([]any)[0].(map[string]any)
				m["platform"] = map[string]any{"os": "linux", "architecture": "riscv64"}
				l.setIndex(t, m)
			})
		}},
		{name: "unknown layout version", message: `OCI layout version "2.0.0"`, archive: func(t *testing.T) ([]byte, string) {
			return edit(t, gz, func(l *ociLayout) { l.set("oci-layout", []byte(`{"imageLayoutVersion":"2.0.0"}`)) })
		}},
		{name: "missing oci-layout", message: "without an oci-layout", archive: func(t *testing.T) ([]byte, string) {
			return edit(t, gz, func(l *ociLayout) { l.drop("oci-layout") })
		}},
		{name: "missing layer blob", message: "is missing from the archive", archive: func(t *testing.T) ([]byte, string) {
			return edit(t, gz, func(l *ociLayout) { l.drop("blobs/sha256/" + l.layers[1]) })
		}},
		{name: "missing config blob", message: "config blob", archive: func(t *testing.T) ([]byte, string) {
			return edit(t, gz, func(l *ociLayout) { l.drop("blobs/sha256/" + l.configDigest) })
		}},
		{name: "unknown layer media type", message: "is not a tar layer", archive: func(t *testing.T) ([]byte, string) {
			return edit(t, gz, func(l *ociLayout) {
				l.setManifest(t, func(m map[string]any) {
					m["layers"].([]any)[1].(map[string]any)["mediaType"] = "application/vnd.example.squashfs"
				})
			})
		}},
		{name: "two images for the platform", message: "names 2 images", archive: func(t *testing.T) ([]byte, string) {
			return edit(t, gz, func(l *ociLayout) {
				m := l.index["manifests"].([]any)[0].(map[string]any)
				h, n := l.addBlob(t, map[string]any{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
					"config": l.manifest["config"], "layers": l.manifest["layers"], "annotations": map[string]string{"x": "y"}})
				l.setIndex(t, m, map[string]any{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:" + h, "size": n})
			})
		}},
		{name: "truncated archive", message: "corrupt archive", archive: func(t *testing.T) ([]byte, string) {
			return gz[:len(gz)*2/3], openLayout(t, gz).configDigest
		}},
		{name: "not an image archive", message: "neither manifest.json nor index.json", archive: func(t *testing.T) ([]byte, string) {
			return edit(t, gz, func(l *ociLayout) { l.drop("index.json"); l.drop("oci-layout") })
		}},
		{name: "corrupt layer (digest mismatch)", message: "does not match its digest", streamed: true, archive: func(t *testing.T) ([]byte, string) {
			return edit(t, plain, func(l *ociLayout) {
				b := bytes.Clone(l.file(t, "blobs/sha256/"+l.layers[1]))
				b[len(b)/2] ^= 0xff
				l.set("blobs/sha256/"+l.layers[1], b)
			})
		}},
	}
	for _, tt := range tests {
		for _, seek := range []bool{false, true} {
			name := tt.name
			if seek {
				name += " (seekable scan)"
			}
			t.Run(name, func(t *testing.T) {
				archive, cfg := tt.archive(t)
				tag := newTag()
				removeOnCleanup(t, cli, tag)
				removeOnCleanup(t, cli, "sha256:"+cfg)
				g := &guardAPI{LoadAPI: cli}
				var opens atomic.Int32
				opts := engine.LoadOptions{Platform: tt.platform}
				if seek {
					opts.Scan = seekOpener(archive, new(atomic.Int64))
				}
				_, err := engine.LoadFrom(t.Context(), g, countingOpener(archive, &opens), tag, opts)
				require.ErrorIs(t, err, image.ErrUnsupportedFormat)
				assert.ErrorContains(t, err, tt.message)
				if !tt.streamed {
					assert.Empty(t, g.calls, "refused before any engine call")
					assert.EqualValues(t, 1, opens.Load())
				}
				assertNoImage(t, cli, tag, "sha256:"+cfg)
			})
		}
	}

	t.Run("store checksum mismatch", func(t *testing.T) {
		open, _ := storeOpener(t, gz)
		bad := func(ctx context.Context) (io.ReadCloser, error) {
			rc, err := open(ctx)
			if err != nil {
				return nil, err
			}
			return image.Verify(rc, -1, image.Digest{Name: "sha256", Hash: sha256.New(), Want: strings.Repeat("0", 64)}), nil
		}
		g := &guardAPI{LoadAPI: cli}
		tag := newTag()
		_, err := engine.LoadFrom(t.Context(), g, bad, tag, engine.LoadOptions{})
		require.ErrorIs(t, err, image.ErrChecksumMismatch)
		assert.Empty(t, g.calls)
		assertNoImage(t, cli, tag)
	})

	t.Run("Load of an OCI layout points at LoadFrom", func(t *testing.T) {
		tag := newTag()
		removeOnCleanup(t, cli, tag)
		_, err := engine.Load(t.Context(), cli, bytes.NewReader(gz), tag)
		require.ErrorIs(t, err, image.ErrUnsupportedFormat)
		assert.ErrorContains(t, err, "LoadFrom")
		assertNoImage(t, cli, tag)
	})

	t.Run("bad platform option", func(t *testing.T) {
		_, err := engine.LoadFrom(t.Context(), cli, countingOpener(gz, new(atomic.Int32)), newTag(), engine.LoadOptions{Platform: "linux"})
		require.ErrorIs(t, err, image.ErrInvalidArgument)
	})
}
