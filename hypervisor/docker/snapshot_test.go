package docker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/client"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dockervisor/dockervisor/hypervisor"
	"github.com/dockervisor/dockervisor/image"
	"github.com/dockervisor/dockervisor/image/glance"
	"github.com/dockervisor/dockervisor/image/localdir"
	"github.com/dockervisor/dockervisor/internal/testenv"
	"github.com/dockervisor/dockervisor/snapshot"
)

// progressLog records the progress reports of snapshots.
type progressLog struct {
	mu  sync.Mutex
	got []snapshot.Progress
	// on, if set, sees each report as it comes.
	on func(snapshot.Progress)
}

func (l *progressLog) report(_ string, p snapshot.Progress) {
	l.mu.Lock()
	l.got = append(l.got, p)
	on := l.on
	l.mu.Unlock()
	if on != nil {
		on(p)
	}
}

func (l *progressLog) phases() []snapshot.Phase {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []snapshot.Phase
	for _, p := range l.got {
		if len(out) == 0 || out[len(out)-1] != p.Phase {
			out = append(out, p.Phase)
		}
	}
	return out
}

// snapEnv is an env whose Driver spawns from store and snapshots into it,
// with a busybox base image in the store. It returns the base image's ID.
func snapEnv(t *testing.T, store image.Store, log *progressLog, opts ...Option) (*env, string) {
	t.Helper()
	cli := testenv.MustHaveDocker(t)
	ctx := t.Context()
	base, err := store.Create(ctx, image.Metadata{Name: "dockervisor-test-base " + testenv.UniqueName("b")},
		strings.NewReader(string(savedImage(t, cli, "base"))))
	require.NoError(t, err)
	t.Cleanup(func() { _ = store.Delete(context.WithoutCancel(t.Context()), base.ID) })
	if log != nil {
		opts = append(opts, WithSnapshotProgress(log.report))
	}
	e := newEnv(t, append([]Option{WithImageStore(store)}, opts...)...)
	e.removeStoreTagAtEnd(base.ID)
	return e, base.ID
}

// shell runs script in the instance's sh, then waits for SIGTERM.
func shell(script string) []string {
	return []string{"sh", "-c", script + "; trap 'exit 0' TERM; sleep 3600 & wait"}
}

// committedImages returns the engine's images in the snapshot pipeline's
// commit repository that were committed from instances of d (a commit
// keeps the container's labels): other test processes commit into the
// same repository meanwhile.
func committedImages(t *testing.T, cli *client.Client, d *Driver) []string {
	t.Helper()
	f := make(client.Filters).Add("reference", snapshot.CommitRepository).Add("label", d.label(labelInstanceID))
	res, err := cli.ImageList(context.WithoutCancel(t.Context()), client.ImageListOptions{All: true, Filters: f})
	require.NoError(t, err)
	var out []string
	for _, im := range res.Items {
		out = append(out, im.RepoTags...)
	}
	return out
}

// TestSnapshotBootAndRebuild writes a file inside an instance, snapshots it
// into a real store (a local directory, a real Glance), boots a second
// instance from the snapshot and reads the file back, then rebuilds a third
// instance from the snapshot: the file is there, the limits (read from the
// kernel's cgroup) are the same.
func TestSnapshotBootAndRebuild(t *testing.T) {
	for _, kind := range []string{"localdir", "glance"} {
		t.Run(kind, func(t *testing.T) {
			var store image.Store
			var ep string
			switch kind {
			case "localdir":
				s, err := localdir.New(t.TempDir())
				require.NoError(t, err)
				store = s
			case "glance":
				ep = testenv.MustHaveGlance(t)
				s, err := glance.NewNoAuth(ep)
				require.NoError(t, err)
				store = s
			}
			log := &progressLog{}
			e, baseID := snapEnv(t, store, log)
			ctx := t.Context()
			marker := testenv.UniqueName("written-")

			src := e.spec("src")
			src.Image = baseID
			src.Command = shell("echo " + marker + " > /snapfile; echo written")
			e.spawn(src)
			e.waitConsole("src", "written")
			before, err := e.drv.Info(ctx, "src")
			require.NoError(t, err)

			name := "Snapshot of Src – Ünïcode 快照 " + marker // capitals, spaces, unicode
			meta, err := e.drv.Snapshot(ctx, "src", hypervisor.SnapshotRequest{Name: name, Properties: map[string]string{"owner_note": "test"}})
			require.NoError(t, err)
			t.Cleanup(func() { _ = store.Delete(context.WithoutCancel(t.Context()), meta.ID) })
			e.removeStoreTagAtEnd(meta.ID)

			assert.Equal(t, name, meta.Name)
			assert.Equal(t, image.ContainerFormatDocker, meta.ContainerFormat)
			assert.Equal(t, image.DiskFormatRaw, meta.DiskFormat)
			assert.Len(t, meta.SHA256, 64)
			assert.Positive(t, meta.Size)
			assert.Equal(t, map[string]string{
				"image_type": "snapshot", "instance_uuid": "src", "base_image_ref": baseID,
				"docker_image_id": meta.Properties["docker_image_id"], "owner_note": "test",
			}, meta.Properties)
			assert.True(t, strings.HasPrefix(meta.Properties["docker_image_id"], "sha256:"))
			after, err := e.drv.Info(ctx, "src")
			require.NoError(t, err)
			assert.Equal(t, hypervisor.StateRunning, after.State)
			assert.Equal(t, before.PID, after.PID, "the same process, paused and thawed")

			// Progress: the phases in order, the bytes up to the size.
			assert.Equal(t, []snapshot.Phase{snapshot.PhasePausing, snapshot.PhaseCommitting, snapshot.PhaseUploading, snapshot.PhaseDone}, log.phases())
			last := log.got[len(log.got)-1]
			assert.Equal(t, meta.Size, last.Bytes, "bytes uploaded when done")

			// The committed image is gone from the engine.
			_, err = e.cli.ImageInspect(ctx, meta.Properties["docker_image_id"])
			assert.True(t, isNotFound(err), "committed image %s left on the engine: %v", meta.Properties["docker_image_id"], err)

			// Listed by instance_uuid.
			list, err := snapshot.List(ctx, store, "src")
			require.NoError(t, err)
			require.Len(t, list, 1)
			assert.Equal(t, meta.ID, list[0].ID)

			if ep != "" {
				checkGlanceMetadata(t, ep, meta, baseID)
			}

			// Boot from the snapshot: the file is there.
			boot := e.spec("boot")
			boot.Image = meta.ID
			boot.Command = shell("cat /snapfile")
			e.spawn(boot)
			e.waitConsole("boot", marker)

			// Rebuild another instance from the snapshot: same limits,
			// the file appears.
			rb := e.spec("rb")
			rb.Image = baseID
			rb.MemoryMB, rb.VCPUs = 96, 2
			rb.Metadata = map[string]string{"k": "v"}
			rb.Command = shell("cat /snapfile 2>/dev/null || echo none")
			e.spawn(rb)
			e.waitConsole("rb", "none")
			rbBefore, err := e.drv.Info(ctx, "rb")
			require.NoError(t, err)
			require.NoError(t, e.drv.Rebuild(ctx, "rb", meta.ID))
			e.waitConsole("rb", marker)
			rbAfter, err := e.drv.Info(ctx, "rb")
			require.NoError(t, err)
			assert.Equal(t, hypervisor.StateRunning, rbAfter.State)
			assert.Equal(t, meta.ID, rbAfter.Image)
			assert.Equal(t, "vm-rb", rbAfter.Name)
			assert.Equal(t, rb.Metadata, rbAfter.Metadata)
			assert.NotEqual(t, rbBefore.BackendID, rbAfter.BackendID, "a fresh container")
			lim, want := readKernelLimits(t, e.inspect("rb")), wantLimits(2, 0, 96)
			assert.Equal(t, want.MemoryBytes, lim.MemoryBytes, "memory limit after rebuild")
			assert.Equal(t, want.CPUWeight, lim.CPUWeight, "CPU weight after rebuild")
			assert.Equal(t, 1, e.containersNamed(e.drv.containerName("rb")))
			assert.Zero(t, e.containersNamed(e.drv.containerName("rb")+rebuildAsideSuffix), "the old container is gone")

			// Delete the instance's snapshots through the store.
			n, err := snapshot.DeleteAll(ctx, store, "src")
			require.NoError(t, err)
			assert.Equal(t, 1, n)
			list, err = snapshot.List(ctx, store, "src")
			require.NoError(t, err)
			assert.Empty(t, list)
		})
	}
}

// checkGlanceMetadata reads the snapshot through Glance's own API.
func checkGlanceMetadata(t *testing.T, ep string, meta image.Metadata, baseID string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, ep+"v2/images/"+meta.ID, nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var got map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&got))
	for k, want := range map[string]any{
		"name": meta.Name, "status": "active", "container_format": "docker", "disk_format": "raw",
		"image_type": "snapshot", "instance_uuid": "src", "base_image_ref": baseID,
		"docker_image_id": meta.Properties["docker_image_id"], "owner_note": "test",
		"size": float64(meta.Size), glance.DefaultSHA256Property: meta.SHA256,
	} {
		assert.Equal(t, want, got[k], "Glance's %s", k)
	}
}

// glanceImages lists every image of a Glance (any status) through its own
// API, with property filters.
func glanceImages(t *testing.T, ep string, filter string) []map[string]any {
	t.Helper()
	req, err := http.NewRequestWithContext(context.WithoutCancel(t.Context()), http.MethodGet, ep+"v2/images?"+filter, nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var got struct {
		Images []map[string]any `json:"images"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&got))
	return got.Images
}

// faultyAPI is the real engine with a failing commit or save.
type faultyAPI struct {
	APIClient
	failCommit, failSave bool
}

var errEngineFault = errors.New("injected engine failure")

func (f faultyAPI) ContainerCommit(ctx context.Context, id string, o client.ContainerCommitOptions) (client.ContainerCommitResult, error) {
	if f.failCommit {
		return client.ContainerCommitResult{}, fmt.Errorf("commit: %w", errEngineFault)
	}
	return f.APIClient.ContainerCommit(ctx, id, o)
}

func (f faultyAPI) ImageSave(ctx context.Context, refs []string, o ...client.ImageSaveOption) (client.ImageSaveResult, error) {
	if f.failSave {
		return nil, fmt.Errorf("save: %w", errEngineFault)
	}
	return f.APIClient.ImageSave(ctx, refs, o...)
}

// TestSnapshotFaults: every fault leaves no store image (none in Glance,
// whatever its status), no committed image on the engine, and the
// instance running as before (same process, not paused).
func TestSnapshotFaults(t *testing.T) {
	cli := testenv.MustHaveDocker(t)
	ep := testenv.MustHaveGlance(t)
	gs, err := glance.NewNoAuth(ep)
	require.NoError(t, err)
	log := &progressLog{}
	e, baseID := snapEnv(t, gs, log)
	ctx := t.Context()
	src := e.spec("f1")
	src.Image = baseID
	src.Command = shell("busybox dd if=/dev/urandom of=/big bs=1M count=8 2>/dev/null; echo written")
	e.spawn(src)
	e.waitConsole("f1", "written")
	before, err := e.drv.Info(ctx, "f1")
	require.NoError(t, err)

	check := func(t *testing.T, err error) {
		t.Helper()
		require.Error(t, err)
		assert.Empty(t, glanceImages(t, ep, "instance_uuid=f1"), "no snapshot image in Glance, in any status")
		assert.Empty(t, committedImages(t, cli, e.drv), "no committed image on the engine")
		info, ierr := e.drv.Info(ctx, "f1")
		require.NoError(t, ierr)
		assert.Equal(t, hypervisor.StateRunning, info.State, "the instance runs")
		assert.Equal(t, before.PID, info.PID, "the same process")
		assert.Equal(t, "running", string(e.inspect("f1").State.Status), "not paused on the engine")
	}

	for _, phase := range []snapshot.Phase{snapshot.PhasePausing, snapshot.PhaseCommitting, snapshot.PhaseUploading} {
		t.Run("cancel-"+string(phase), func(t *testing.T) {
			cctx, cancel := context.WithCancel(ctx)
			defer cancel()
			log.mu.Lock()
			log.on = func(p snapshot.Progress) {
				if p.Phase == phase && (phase != snapshot.PhaseUploading || p.Bytes > 0) {
					cancel()
				}
			}
			log.mu.Unlock()
			defer func() { log.mu.Lock(); log.on = nil; log.mu.Unlock() }()
			_, err := e.drv.Snapshot(cctx, "f1", hypervisor.SnapshotRequest{Name: "cancelled"})
			assert.ErrorIs(t, err, context.Canceled)
			check(t, err)
		})
	}
	t.Run("name-rejected", func(t *testing.T) {
		_, err := e.drv.Snapshot(ctx, "f1", hypervisor.SnapshotRequest{Name: strings.Repeat("n", 300)})
		assert.ErrorIs(t, err, hypervisor.ErrInvalidArgument)
		check(t, err)
	})
	t.Run("property-rejected", func(t *testing.T) {
		_, err := e.drv.Snapshot(ctx, "f1", hypervisor.SnapshotRequest{Properties: map[string]string{"os_glance_import_task": "x"}})
		assert.ErrorIs(t, err, hypervisor.ErrInvalidArgument)
		check(t, err)
	})
	t.Run("missing-instance", func(t *testing.T) {
		_, err := e.drv.Snapshot(ctx, "nosuch", hypervisor.SnapshotRequest{})
		assert.ErrorIs(t, err, hypervisor.ErrNotFound)
		assert.Empty(t, glanceImages(t, ep, "instance_uuid=nosuch"))
		check(t, err)
	})
	for _, fault := range []faultyAPI{{failCommit: true}, {failSave: true}} {
		name := "engine-commit-error"
		if fault.failSave {
			name = "engine-save-error"
		}
		t.Run(name, func(t *testing.T) {
			fault.APIClient = e.cli
			d, err := New(append(slices.Clone(e.opts), WithAPIClient(fault))...)
			require.NoError(t, err)
			defer d.Close()
			_, err = d.Snapshot(ctx, "f1", hypervisor.SnapshotRequest{})
			assert.ErrorIs(t, err, errEngineFault)
			assert.ErrorIs(t, err, hypervisor.ErrUnavailable, "an engine failure without a class is unavailable")
			check(t, err)
		})
	}
}

// TestSnapshotGlanceKilledMidUpload kills a real glance-api (private to the
// test) with SIGKILL in the middle of the upload and starts it again, as a
// store that goes away and comes back: Snapshot fails as unavailable, its
// rollback deletes the half-uploaded image once Glance is back, and
// nothing is left: no image in Glance in any status, no data file, no
// committed image, the instance running as before.
func TestSnapshotGlanceKilledMidUpload(t *testing.T) {
	cli := testenv.MustHaveDocker(t)
	gp := testenv.StartRestartableGlance(t)
	gs, err := glance.NewNoAuth(gp.Endpoint)
	require.NoError(t, err)
	log := &progressLog{}
	e, baseID := snapEnv(t, gs, log)
	// A glance-api restart takes seconds, more on a loaded machine: the
	// rollback's retries of the delete must outlast it.
	e.drv.cleanupTimeout = 2 * time.Minute
	ctx := t.Context()
	src := e.spec("k1")
	src.Image = baseID
	src.Command = shell("busybox dd if=/dev/urandom of=/big bs=1M count=64 2>/dev/null; echo written")
	e.spawn(src)
	e.waitConsole("k1", "written")
	before, err := e.drv.Info(ctx, "k1")
	require.NoError(t, err)

	var once sync.Once
	restarted := make(chan error, 1)
	log.on = func(p snapshot.Progress) {
		if p.Phase == snapshot.PhaseUploading && p.Bytes >= 4<<20 {
			once.Do(func() {
				gp.Kill()
				go func() {
					time.Sleep(time.Second)
					t0 := time.Now()
					err := gp.Start()
					t.Logf("glance-api restarted in %s", time.Since(t0))
					restarted <- err
				}()
			})
		}
	}
	t0 := time.Now()
	_, err = e.drv.Snapshot(ctx, "k1", hypervisor.SnapshotRequest{Name: "killed mid-upload"})
	t.Logf("snapshot failed after %s", time.Since(t0))
	require.Error(t, err)
	assert.ErrorIs(t, err, hypervisor.ErrUnavailable)
	t.Logf("snapshot: %v", err)
	require.NoError(t, <-restarted, "glance-api came back")
	var se *snapshot.Error
	require.ErrorAs(t, err, &se)
	assert.Equal(t, snapshot.PhaseUploading, se.Phase)
	assert.NoError(t, se.Cleanup, "the rollback deleted the image once Glance was back")

	assert.Empty(t, glanceImages(t, gp.Endpoint, "instance_uuid=k1"), "no snapshot image in Glance, in any status")
	assert.Len(t, glanceImages(t, gp.Endpoint, ""), 1, "only the base image is in Glance")
	// glance-api's file store writes the upload to <datadir>/<image ID>;
	// killed with SIGKILL, it cannot remove the partial file, and Glance
	// does not remove the file of an image deleted before its upload
	// ended. That orphan is Glance's own crash debris, reported here.
	for _, f := range gp.DataFiles(t) {
		if f != baseID {
			t.Logf("glance-api left the partial data file %s of the deleted image after its crash", f)
		}
	}
	assert.Empty(t, committedImages(t, cli, e.drv), "no committed image on the engine")
	info, err := e.drv.Info(ctx, "k1")
	require.NoError(t, err)
	assert.Equal(t, hypervisor.StateRunning, info.State)
	assert.Equal(t, before.PID, info.PID)
}
