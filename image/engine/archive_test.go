package engine_test

import (
	"archive/tar"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	mrand "math/rand/v2"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dockervisor/dockervisor/internal/testenv"
)

// archiveSpec describes a synthetic docker-save archive: the busybox root
// file system plus, optionally, a file of BigSize pseudo-random bytes in a
// second layer. Each spec gets a random label, so its image ID is new to
// the engine, and a random seed, so its big layer is not cached either.
type archiveSpec struct {
	BigSize  int64
	RepoTag  string // put into manifest RepoTags and repositories
	Images   int    // manifest entries; 0 means 1
	BadDiff  bool   // config names a wrong diff ID: the engine refuses it
	NoLayer  bool   // manifest names a layer the archive lacks
	DupLayer bool   // the busybox layer appears again, as a symlink (as docker save does)
	seed     [32]byte
	label    string
	bbRootfs []byte
}

func newSpec(t testing.TB, bigSize int64) *archiveSpec {
	s := &archiveSpec{BigSize: bigSize, label: testenv.UniqueName("l"), bbRootfs: testenv.BusyboxRootfs(t)}
	_, _ = rand.Read(s.seed[:])
	s.RepoTag = "dockervisor-test/leak:" + s.label
	return s
}

// bigLayer writes the second layer (a tar with one big file) to w.
func (s *archiveSpec) bigLayer(w io.Writer) error {
	tw := tar.NewWriter(w)
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "big.bin", Mode: 0o644, Size: s.BigSize}); err != nil {
		return err
	}
	if _, err := io.CopyN(tw, mrand.NewChaCha8(s.seed), s.BigSize); err != nil {
		return err
	}
	return tw.Close()
}

type countHash struct {
	n int64
	h interface{ Write([]byte) (int, error) }
}

func (c *countHash) Write(p []byte) (int, error) { c.n += int64(len(p)); return c.h.Write(p) }

func digest(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

// config returns the image config JSON.
func (s *archiveSpec) config(diffIDs []string) []byte {
	cfg := map[string]any{
		"architecture": "amd64",
		"os":           "linux",
		"created":      "2026-01-01T00:00:00Z",
		"config":       map[string]any{"Cmd": []string{"/bin/sh"}, "Labels": map[string]string{"dockervisor.test": s.label}},
		"rootfs":       map[string]any{"type": "layers", "diff_ids": diffIDs},
	}
	b, _ := json.Marshal(cfg)
	return b
}

// WriteTo writes the archive, streaming the big layer (generated twice:
// once to hash it, once to write it).
func (s *archiveSpec) WriteTo(w io.Writer) (int64, error) {
	cw := &countWriter{w: w}
	err := s.write(cw)
	return cw.n, err
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

func (s *archiveSpec) layers() (diffIDs []string, sizes []int64, err error) {
	diffIDs = append(diffIDs, "sha256:"+digest(s.bbRootfs))
	sizes = append(sizes, int64(len(s.bbRootfs)))
	if s.BigSize > 0 {
		ch := &countHash{h: sha256.New()}
		if err := s.bigLayer(ch); err != nil {
			return nil, nil, err
		}
		diffIDs = append(diffIDs, "sha256:"+hex.EncodeToString(ch.h.(interface{ Sum([]byte) []byte }).Sum(nil)))
		sizes = append(sizes, ch.n)
	}
	if s.DupLayer {
		diffIDs = append(diffIDs, diffIDs[0])
		sizes = append(sizes, 0)
	}
	return diffIDs, sizes, nil
}

// ImageID returns "sha256:<config digest>", the engine ID of the image.
func (s *archiveSpec) ImageID() string {
	diffIDs, _, err := s.layers()
	if err != nil {
		panic(err)
	}
	return "sha256:" + digest(s.config(s.diffIDs(diffIDs)))
}

func (s *archiveSpec) diffIDs(d []string) []string {
	if s.BadDiff {
		return []string{"sha256:" + digest([]byte("wrong")), d[len(d)-1]}[:len(d)]
	}
	return d
}

func (s *archiveSpec) write(w io.Writer) error {
	diffIDs, sizes, err := s.layers()
	if err != nil {
		return err
	}
	cfg := s.config(s.diffIDs(diffIDs))
	cfgName := digest(cfg) + ".json"
	tw := tar.NewWriter(w)
	file := func(name string, data []byte) error {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(data))}); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	var layerPaths []string
	for i, d := range diffIDs {
		dir := d[len("sha256:"):]
		if s.DupLayer && i == len(diffIDs)-1 {
			dup := digest([]byte(dir + "dup"))
			if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: dup + "/", Mode: 0o755}); err != nil {
				return err
			}
			if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: dup + "/layer.tar", Linkname: "../" + dir + "/layer.tar", Mode: 0o777}); err != nil {
				return err
			}
			layerPaths = append(layerPaths, dup+"/layer.tar")
			continue
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: dir + "/", Mode: 0o755}); err != nil {
			return err
		}
		if err := file(dir+"/VERSION", []byte("1.0")); err != nil {
			return err
		}
		layerPaths = append(layerPaths, dir+"/layer.tar")
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: dir + "/layer.tar", Mode: 0o644, Size: sizes[i]}); err != nil {
			return err
		}
		if i == 0 {
			_, err = tw.Write(s.bbRootfs)
		} else {
			err = s.bigLayer(tw)
		}
		if err != nil {
			return err
		}
	}
	if s.NoLayer {
		layerPaths = append(layerPaths, "missing/layer.tar")
	}
	if err := file(cfgName, cfg); err != nil {
		return err
	}
	n := max(s.Images, 1)
	var manifest []map[string]any
	for range n {
		manifest = append(manifest, map[string]any{"Config": cfgName, "RepoTags": []string{s.RepoTag}, "Layers": layerPaths})
	}
	mb, _ := json.Marshal(manifest)
	if err := file("manifest.json", mb); err != nil {
		return err
	}
	repo, tag, _ := cut(s.RepoTag)
	rb, _ := json.Marshal(map[string]map[string]string{repo: {tag: diffIDs[len(diffIDs)-1][len("sha256:"):]}})
	if err := file("repositories", rb); err != nil {
		return err
	}
	return tw.Close()
}

func cut(ref string) (string, string, bool) {
	i := strings.LastIndex(ref, ":")
	if i < 0 {
		return ref, "", false
	}
	return ref[:i], ref[i+1:], true
}

// Bytes returns the whole archive (for small specs).
func (s *archiveSpec) Bytes(t testing.TB) []byte {
	t.Helper()
	var buf bytes.Buffer
	_, err := s.WriteTo(&buf)
	require.NoError(t, err)
	return buf.Bytes()
}
