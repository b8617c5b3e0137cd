package docker

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/dockervisor/dockervisor/hypervisor"
	"github.com/dockervisor/dockervisor/image/engine"
	"github.com/dockervisor/dockervisor/image/glance"
	"github.com/dockervisor/dockervisor/internal/testarchive"
	"github.com/dockervisor/dockervisor/internal/testenv"
)

// snapBench is an instance whose image carries mib MiB of pseudo-random
// data, on a driver that snapshots into the shared private Glance.
type snapBench struct {
	d   *Driver
	gs  *glance.Store
	ep  string
	cid string
	id  string
}

func newSnapBench(b *testing.B, mib int64) *snapBench {
	b.Helper()
	cli := testenv.MustHaveDocker(b)
	ep := testenv.MustHaveGlance(b)
	gs, err := glance.NewNoAuth(ep)
	if err != nil {
		b.Fatal(err)
	}
	ctx := b.Context()
	uniq := testenv.UniqueName("sb")
	// The data is generated as a stream straight into the engine's load
	// (no file), and removed at the end.
	spec := testarchive.New(b, mib<<20)
	tag := "dockervisor-test/snapbench:" + uniq
	r := spec.Reader()
	imgID, err := engine.Load(ctx, cli, r, tag)
	r.Close()
	if err != nil {
		b.Fatal(err)
	}
	d, err := New(WithLabelPrefix("io.dockervisor."+uniq+"."), WithNamePrefix("dv-"+uniq+"-"),
		WithStateDir(b.TempDir()), WithStopTimeout(2*time.Second), WithSnapshotStore(gs))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		ctx := context.WithoutCancel(b.Context())
		_ = d.Destroy(ctx, "bench")
		d.Close()
		_, _ = cli.ImageRemove(ctx, imgID, client.ImageRemoveOptions{Force: true, PruneChildren: true})
	})
	inst, err := d.Spawn(ctx, hypervisor.InstanceSpec{ID: "bench", Image: tag, Command: sleeper, MemoryMB: 256})
	if err != nil {
		b.Fatal(err)
	}
	return &snapBench{d: d, gs: gs, ep: ep, cid: inst.BackendID, id: "bench"}
}

// snapshot takes one Snapshot and deletes the stored image.
func (s *snapBench) snapshot(b *testing.B) (time.Duration, int64) {
	ctx := b.Context()
	t0 := time.Now()
	m, err := s.d.Snapshot(ctx, s.id, hypervisor.SnapshotRequest{Name: "bench snapshot"})
	el := time.Since(t0)
	if err != nil {
		b.Fatal(err)
	}
	if err := s.gs.Delete(ctx, m.ID); err != nil {
		b.Fatal(err)
	}
	return el, m.Size
}

// shell runs the pipeline Snapshot replaces: `docker commit`, an image
// record made with curl, then `docker save | curl -T -` into Glance. The
// committed image and the Glance image are removed after the timing.
func (s *snapBench) shell(b *testing.B) time.Duration {
	ctx := b.Context()
	ref := "dockervisor-test/snapbench-shell:" + testenv.UniqueName("s")
	t0 := time.Now()
	run(b, "docker", "commit", s.cid, ref)
	out := run(b, "curl", "-sSf", "-X", "POST", "-H", "Content-Type: application/json",
		"-d", `{"name":"bench shell","container_format":"docker","disk_format":"raw"}`, s.ep+"v2/images")
	var im struct{ ID string }
	if err := json.Unmarshal(out, &im); err != nil || im.ID == "" {
		b.Fatalf("create image: %v %s", err, out)
	}
	run(b, "sh", "-c", fmt.Sprintf("docker save %s | curl -sSf -T - -H 'Content-Type: application/octet-stream' %sv2/images/%s/file", ref, s.ep, im.ID))
	el := time.Since(t0)
	run(b, "docker", "rmi", ref)
	if err := s.gs.Delete(ctx, im.ID); err != nil {
		b.Fatal(err)
	}
	return el
}

func run(b *testing.B, name string, args ...string) []byte {
	b.Helper()
	cmd := exec.CommandContext(b.Context(), name, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		b.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, stderr.String())
	}
	return out
}

// BenchmarkSnapshot measures Snapshot end to end (pause, commit, unpause,
// save streamed into the real Glance, committed image removed) of an
// instance whose image carries 256 MiB of data, against the shell pipeline
// it replaces (docker commit, then docker save | curl -T into the same
// Glance), alternating which goes first. ns/op is Snapshot's. Metrics:
// snapshot-s and shell-s per run, MB/s of each, and ratio = shell time
// over Snapshot time (target >= 1.0: at least as fast).
func BenchmarkSnapshot(b *testing.B) {
	if _, err := exec.LookPath("curl"); err != nil {
		testenv.Missing(b, "curl: %v", err)
	}
	s := newSnapBench(b, 256)
	var snapT, shellT time.Duration
	var size int64
	b.ResetTimer()
	for i := range b.N {
		if i%2 == 0 {
			el, n := s.snapshot(b)
			snapT, size = snapT+el, n
			shellT += s.shell(b)
		} else {
			shellT += s.shell(b)
			el, n := s.snapshot(b)
			snapT, size = snapT+el, n
		}
	}
	b.StopTimer()
	n := float64(b.N)
	b.ReportMetric(snapT.Seconds()/n, "snapshot-s")
	b.ReportMetric(shellT.Seconds()/n, "shell-s")
	b.ReportMetric(float64(size)/1e6/(snapT.Seconds()/n), "snapshot-MB/s")
	b.ReportMetric(float64(size)/1e6/(shellT.Seconds()/n), "shell-MB/s")
	b.ReportMetric(shellT.Seconds()/snapT.Seconds(), "ratio")
}

// BenchmarkSnapshotPeakRSS snapshots an instance whose image carries
// 512 MiB of data into the real Glance and reports the process's peak RSS
// during the snapshot (VmHWM after a reset; target <= 64 MiB, independent
// of the image size) and the RSS before it.
func BenchmarkSnapshotPeakRSS(b *testing.B) {
	s := newSnapBench(b, 512)
	var peak int64
	b.ResetTimer()
	for range b.N {
		if err := testarchive.ResetPeakRSS(); err != nil {
			b.Skipf("cannot reset the peak RSS: %v", err)
		}
		before := testarchive.ProcStatus("VmRSS")
		_, size := s.snapshot(b)
		peak = max(peak, testarchive.ProcStatus("VmHWM"))
		b.ReportMetric(float64(before)/(1<<20), "rss-before-MiB")
		b.ReportMetric(float64(size)/(1<<20), "image-MiB")
	}
	b.ReportMetric(float64(peak)/(1<<20), "peak-rss-MiB")
}
