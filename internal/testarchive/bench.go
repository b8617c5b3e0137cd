package testarchive

import (
	"context"
	"os"
	"strconv"
	"testing"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"

	"github.com/dockervisor/dockervisor/image"
	"github.com/dockervisor/dockervisor/image/busybox"
)

// BenchMiB is the size in MiB of the big layer of benchmark images:
// DOCKERVISOR_BENCH_MIB, default 64.
func BenchMiB() int64 {
	if v, err := strconv.ParseInt(os.Getenv("DOCKERVISOR_BENCH_MIB"), 10, 64); err == nil && v > 0 {
		return v
	}
	return 64
}

// Store generates the archive straight into s (no whole-archive buffer)
// under meta (ID, name; formats default to docker and raw) and returns the
// stored metadata.
func (s *Spec) Store(tb testing.TB, st image.Store, meta image.Metadata) image.Metadata {
	tb.Helper()
	r := s.Reader()
	m, err := st.Create(context.WithoutCancel(tb.Context()), meta, r)
	r.Close()
	if err != nil {
		tb.Fatal(err)
	}
	return m
}

// RawStoreLoad is the baseline of the load benchmarks: the store stream of
// id straight into the engine's image load, its progress stream drained.
func RawStoreLoad(ctx context.Context, cli *client.Client, s image.Reader, id string) error {
	rc, err := s.Open(ctx, id)
	if err != nil {
		return err
	}
	defer rc.Close()
	res, err := cli.ImageLoad(ctx, rc, client.ImageLoadWithQuiet(true))
	if err != nil {
		return err
	}
	defer res.Close()
	return busybox.DrainJSONStream(res)
}

// RemoveImages removes engine images by reference; missing ones are fine.
func RemoveImages(tb testing.TB, cli *client.Client, refs ...string) {
	for _, ref := range refs {
		_, err := cli.ImageRemove(context.WithoutCancel(tb.Context()), ref, client.ImageRemoveOptions{Force: true, PruneChildren: true})
		if err != nil && !cerrdefs.IsNotFound(err) {
			tb.Errorf("remove image %s: %v", ref, err)
		}
	}
}
