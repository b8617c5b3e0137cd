package hypervisortest_test

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dockervisor/dockervisor/hypervisor"
	"github.com/dockervisor/dockervisor/hypervisor/hypervisortest"
	"github.com/dockervisor/dockervisor/image"
	"github.com/dockervisor/dockervisor/image/imagetest"
	"github.com/dockervisor/dockervisor/network"
)

func TestFakeConformance(t *testing.T) {
	hypervisortest.TestDriver(t, func(t *testing.T) hypervisortest.Harness {
		return hypervisortest.NewFakeHarness(t)
	})
}

// TestFakeConformanceSnapshotStore runs the suite against a Fake whose
// snapshots go to an in-memory store it can boot from.
func TestFakeConformanceSnapshotStore(t *testing.T) {
	hypervisortest.TestDriver(t, func(t *testing.T) hypervisortest.Harness {
		store := imagetest.NewMemStore()
		h := hypervisortest.NewFakeHarness(t, hypervisortest.WithSnapshotStore(store))
		h.Snapshots, h.BootFromSnapshot = store, true
		return h
	})
}

// TestFakeConformanceSnapshotLatency runs the suite against a Fake that can
// snapshot and takes time for every call, so that calls on one ID queue up.
func TestFakeConformanceSnapshotLatency(t *testing.T) {
	hypervisortest.TestDriver(t, func(t *testing.T) hypervisortest.Harness {
		return hypervisortest.NewFakeHarness(t,
			hypervisortest.WithSnapshotStore(&memWriter{}),
			hypervisortest.WithLatency(time.Millisecond))
	})
}

// memWriter is an image.Writer in memory.
type memWriter struct {
	mu     sync.Mutex
	n      int
	images map[string][]byte
	metas  map[string]image.Metadata
}

func (w *memWriter) Create(ctx context.Context, meta image.Metadata, r io.Reader) (image.Metadata, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return image.Metadata{}, err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.images == nil {
		w.images, w.metas = make(map[string][]byte), make(map[string]image.Metadata)
	}
	w.n++
	if meta.ID == "" {
		meta.ID = fmt.Sprintf("img-%d", w.n)
	}
	sum := sha256.Sum256(data)
	meta.Size, meta.SHA256 = int64(len(data)), hex.EncodeToString(sum[:])
	w.images[meta.ID], w.metas[meta.ID] = data, meta
	return meta, nil
}

func (w *memWriter) Delete(ctx context.Context, id string) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.images, id)
	delete(w.metas, id)
	return nil
}

func spec(id string) hypervisor.InstanceSpec {
	return hypervisor.InstanceSpec{ID: id, Image: "img", MemoryMB: 64, VCPUs: 2}
}

func TestFakeImages(t *testing.T) {
	ctx := t.Context()
	f := hypervisortest.NewFake()
	_, err := f.Spawn(ctx, spec("a"))
	require.ErrorIs(t, err, hypervisor.ErrImageNotFound, "an empty image set means no image exists")

	f.AddImage("img")
	_, err = f.Spawn(ctx, spec("a"))
	require.NoError(t, err)

	f.RemoveImage("img")
	_, err = f.Spawn(ctx, spec("b"))
	require.ErrorIs(t, err, hypervisor.ErrImageNotFound)
	info, err := f.Info(ctx, "a")
	require.NoError(t, err)
	assert.Equal(t, hypervisor.StateRunning, info.State, "instances of a removed image keep running")

	f2 := hypervisortest.NewFake(hypervisortest.WithImages("x", "img"))
	_, err = f2.Spawn(ctx, spec("a"))
	require.NoError(t, err)
}

// collect returns the first n events of id from evs.
func collect(t *testing.T, evs <-chan hypervisor.Event, id string, n int) []hypervisor.Event {
	t.Helper()
	var got []hypervisor.Event
	timeout := time.After(5 * time.Second)
	for len(got) < n {
		select {
		case ev := <-evs:
			if ev.ID == id {
				got = append(got, ev)
			}
		case <-timeout:
			require.Failf(t, "missing events", "got %v", got)
		}
	}
	return got
}

func TestFakeCrash(t *testing.T) {
	ctx := t.Context()
	f := hypervisortest.NewFake(hypervisortest.WithImages("img"))
	evs, _ := f.Events(ctx)
	_, err := f.Spawn(ctx, spec("a"))
	require.NoError(t, err)

	require.NoError(t, f.Crash("a", 137))
	info, err := f.Info(ctx, "a")
	require.NoError(t, err)
	assert.Equal(t, hypervisor.StateCrashed, info.State)
	assert.Equal(t, 137, info.ExitCode)
	assert.Zero(t, info.PID)
	assert.Zero(t, info.MemoryBytes)

	err = f.Crash("a", 1)
	require.ErrorIs(t, err, hypervisor.ErrInvalidState, "a crashed instance has no process")
	se, ok := errors.AsType[*hypervisor.StateError](err)
	require.True(t, ok)
	assert.Equal(t, hypervisor.StateCrashed, se.Current)

	require.NoError(t, f.PowerOn(ctx, "a"))
	require.NoError(t, f.Pause(ctx, "a"))
	require.NoError(t, f.Crash("a", 0), "a paused process can die too")
	info, err = f.Info(ctx, "a")
	require.NoError(t, err)
	assert.Equal(t, hypervisor.StateShutdown, info.State, "exit status 0 is a shutdown")

	got := collect(t, evs, "a", 5)
	types := make([]hypervisor.EventType, len(got))
	for i, ev := range got {
		types[i] = ev.Type
	}
	assert.Equal(t, []hypervisor.EventType{
		hypervisor.EventStarted, hypervisor.EventCrashed, hypervisor.EventStarted,
		hypervisor.EventPaused, hypervisor.EventStopped,
	}, types)
	assert.Equal(t, 137, got[1].ExitCode)

	require.ErrorIs(t, f.Crash("missing", 1), hypervisor.ErrNotFound)
	require.ErrorIs(t, f.Crash("bad/id", 1), hypervisor.ErrInvalidArgument)
}

func TestFakeClose(t *testing.T) {
	ctx := t.Context()
	f := hypervisortest.NewFake(hypervisortest.WithImages("img"))
	_, err := f.Spawn(ctx, spec("a"))
	require.NoError(t, err)
	evs, errc := f.Events(ctx)

	require.NoError(t, f.Close())
	require.NoError(t, f.Close())

	for range evs {
	}
	err = <-errc
	require.ErrorIs(t, err, hypervisor.ErrUnavailable, "Close ends event streams with an error")
	_, open := <-errc
	assert.False(t, open, "error channel closed")

	evs, errc = f.Events(ctx)
	for range evs {
	}
	require.ErrorIs(t, <-errc, hypervisor.ErrUnavailable, "Events after Close")

	checks := map[string]error{
		"Info":          func() error { _, err := f.Info(ctx, "a"); return err }(),
		"PowerOff":      f.PowerOff(ctx, "a", hypervisor.StopOptions{}),
		"Destroy":       f.Destroy(ctx, "a"),
		"WriteConsole":  f.WriteConsole("a", []byte("x")),
		"Spawn":         func() error { _, err := f.Spawn(ctx, spec("b")); return err }(),
		"HostResources": func() error { _, err := f.HostResources(ctx); return err }(),
	}
	for name, err := range checks {
		assert.ErrorIs(t, err, hypervisor.ErrUnavailable, name)
		_, ok := errors.AsType[*hypervisor.OpError](err)
		assert.True(t, ok, "%s: %v is an OpError", name, err)
	}
}

// clock is a manual clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func TestFakeResources(t *testing.T) {
	ctx := t.Context()
	c := &clock{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	f := hypervisortest.NewFake(hypervisortest.WithImages("img"), hypervisortest.WithClock(c.Now),
		hypervisortest.WithHost("node-1", 4, 8192, 50))

	_, err := f.Spawn(ctx, spec("a")) // 2 vCPUs, 64 MiB
	require.NoError(t, err)
	unlimited := spec("b")
	unlimited.VCPUs, unlimited.MemoryMB = 0, 0
	_, err = f.Spawn(ctx, unlimited)
	require.NoError(t, err)

	cpu := func(id string) time.Duration {
		t.Helper()
		info, err := f.Info(ctx, id)
		require.NoError(t, err)
		return info.CPUTime
	}
	assert.Zero(t, cpu("a"))
	c.Advance(10 * time.Second)
	assert.Equal(t, 10*time.Second, cpu("a"), "CPU time grows while running")
	require.NoError(t, f.Pause(ctx, "a"))
	c.Advance(5 * time.Second)
	assert.Equal(t, 10*time.Second, cpu("a"), "but not while paused")
	require.NoError(t, f.Unpause(ctx, "a"))
	c.Advance(time.Second)
	assert.Equal(t, 11*time.Second, cpu("a"))
	require.NoError(t, f.PowerOff(ctx, "a", hypervisor.StopOptions{}))
	c.Advance(time.Second)
	assert.Zero(t, cpu("a"), "no current run when shut down")
	require.NoError(t, f.PowerOn(ctx, "a"))
	c.Advance(time.Second)
	assert.Equal(t, time.Second, cpu("a"), "a new run starts from zero")

	info, err := f.Info(ctx, "a")
	require.NoError(t, err)
	assert.Equal(t, uint64(64<<20), info.MaxMemoryBytes)
	assert.Equal(t, c.Now().Add(-time.Second), info.StartedAt)
	info, err = f.Info(ctx, "b")
	require.NoError(t, err)
	assert.Equal(t, uint64(8192<<20), info.MaxMemoryBytes, "unlimited: the host's memory")
	assert.Equal(t, 1, info.VCPUs)

	require.NoError(t, f.SoftDelete(ctx, "b"))
	h, err := f.HostResources(ctx)
	require.NoError(t, err)
	assert.Equal(t, "node-1", h.Hostname)
	assert.Equal(t, hypervisortest.FakeHypervisorType, h.HypervisorType)
	assert.Equal(t, 4, h.VCPUs)
	assert.Equal(t, 3, h.VCPUsUsed, "sum of flavors, in every state")
	assert.Equal(t, int64(8192), h.MemoryMB)
	assert.Equal(t, int64(64), h.MemoryClaimedMB)
	assert.Equal(t, h.MemoryMB, h.MemoryUsedMB+h.MemoryFreeMB)
	assert.Equal(t, int64(50), h.DiskGB)
	assert.Equal(t, 18*time.Second, h.Uptime)
	assert.Equal(t, map[string]int{"running": 1, "soft-deleted": 1}, h.Instances)

	nodes, err := f.AvailableNodes(ctx)
	require.NoError(t, err)
	assert.Equal(t, []string{"node-1"}, nodes)

	s, err := f.InstanceStats(ctx, "a")
	require.NoError(t, err)
	assert.Equal(t, time.Second, s.CPUTime)
	assert.Equal(t, uint64(64<<20), s.MemoryLimitBytes)
	assert.Positive(t, s.MemoryBytes)
}

func TestFakeVIFs(t *testing.T) {
	ctx := t.Context()
	f := hypervisortest.NewFake(hypervisortest.WithImages("img"))
	_, err := f.Spawn(ctx, spec("a"))
	require.NoError(t, err)
	v0, v1, v2 := hypervisortest.FakeVIF(t, 0), hypervisortest.FakeVIF(t, 1), hypervisortest.FakeVIF(t, 2)

	require.NoError(t, f.PlugVIFs(ctx, "a", []network.VIF{v0, v1}))
	changed := v0
	changed.MTU = 9000
	require.NoError(t, f.PlugVIFs(ctx, "a", []network.VIF{changed}), "plugging again replaces")
	vifs, err := f.VIFs("a")
	require.NoError(t, err)
	assert.Equal(t, []network.VIF{changed, v1}, vifs)

	err = f.PlugVIFs(ctx, "a", []network.VIF{v2, {ID: "no-type"}})
	require.ErrorIs(t, err, hypervisor.ErrInvalidArgument)
	require.ErrorIs(t, err, network.ErrInvalidVIF)
	vifs, err = f.VIFs("a")
	require.NoError(t, err)
	assert.Len(t, vifs, 2, "a rejected PlugVIFs plugs nothing")

	require.NoError(t, f.UnplugVIFs(ctx, "a", []network.VIF{v1, v2}))
	require.NoError(t, f.AttachInterface(ctx, "a", v2))
	vifs, err = f.VIFs("a")
	require.NoError(t, err)
	assert.Equal(t, []network.VIF{changed, v2}, vifs)

	s, err := f.InstanceStats(ctx, "a")
	require.NoError(t, err)
	require.Len(t, s.Interfaces, 2)
	assert.Equal(t, v2.ID, s.Interfaces[1].PortID)

	// VIFs survive a stop and start.
	require.NoError(t, f.PowerOff(ctx, "a", hypervisor.StopOptions{}))
	s, err = f.InstanceStats(ctx, "a")
	require.NoError(t, err)
	assert.Empty(t, s.Interfaces, "no interfaces without a process")
	require.ErrorIs(t, f.AttachInterface(ctx, "a", v1), hypervisor.ErrInvalidState)
	require.NoError(t, f.PowerOn(ctx, "a"))
	vifs, err = f.VIFs("a")
	require.NoError(t, err)
	assert.Equal(t, []network.VIF{changed, v2}, vifs)

	require.NoError(t, f.DetachInterface(ctx, "a", v2))
	require.NoError(t, f.DetachInterface(ctx, "a", v2))
	vifs, err = f.VIFs("a")
	require.NoError(t, err)
	assert.Equal(t, []network.VIF{changed}, vifs)
}

func TestFakeSnapshot(t *testing.T) {
	ctx := t.Context()
	w := &memWriter{}
	f := hypervisortest.NewFake(hypervisortest.WithImages("img"), hypervisortest.WithSnapshotStore(w))
	assert.True(t, f.Capabilities().Snapshot)
	assert.False(t, hypervisortest.NewFake().Capabilities().Snapshot)
	_, err := f.Spawn(ctx, spec("a"))
	require.NoError(t, err)

	meta, err := f.Snapshot(ctx, "a", hypervisor.SnapshotRequest{Properties: map[string]string{"k": "v"}})
	require.NoError(t, err)
	assert.Equal(t, "snapshot of a", meta.Name)
	assert.Equal(t, map[string]string{"k": "v", "instance_uuid": "a", "image_type": "snapshot", "base_image_ref": "img"}, meta.Properties)
	assert.Equal(t, image.ContainerFormatDocker, meta.ContainerFormat)

	tr := tar.NewReader(bytes.NewReader(w.images[meta.ID]))
	hdr, err := tr.Next()
	require.NoError(t, err)
	assert.Equal(t, "instance.json", hdr.Name)
	var inst hypervisor.Instance
	require.NoError(t, json.NewDecoder(tr).Decode(&inst))
	assert.Equal(t, "a", inst.ID)
}

// TestFakeSerialises checks that a call waiting for another call on the
// same ID gives up, doing nothing, when its context ends, and that a call
// on another ID does not wait.
func TestFakeSerialises(t *testing.T) {
	// The hook keeps the lock of a that Pause takes until release, however
	// slow the host, and counts the calls that take the lock of a while
	// Pause holds it: none, if the Fake serialises.
	var armed, held atomic.Bool
	var overlaps atomic.Int32
	locked, release := make(chan struct{}), make(chan struct{})
	hold := func(id string) {
		switch {
		case id != "a":
		case held.Load():
			overlaps.Add(1)
		case armed.CompareAndSwap(true, false):
			held.Store(true)
			close(locked)
			<-release
			held.Store(false)
		}
	}
	f := hypervisortest.NewFake(hypervisortest.WithImages("img"),
		hypervisortest.WithLatency(500*time.Millisecond), hypervisortest.WithLockedHook(hold))
	_, err := f.Spawn(t.Context(), spec("a"))
	require.NoError(t, err)
	_, err = f.Spawn(t.Context(), spec("b"))
	require.NoError(t, err)

	armed.Store(true)
	done := make(chan error, 1)
	go func() { done <- f.Pause(context.WithoutCancel(t.Context()), "a") }()
	var releaseOnce sync.Once
	unblock := func() { releaseOnce.Do(func() { close(release) }) }
	defer unblock()
	select {
	case <-locked:
	case <-time.After(time.Minute):
		t.Fatal("Pause never took the lock of a")
	}

	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	off := make(chan error, 1)
	go func() { off <- f.PowerOff(ctx, "a", hypervisor.StopOptions{}) }()
	select {
	case err = <-off:
	case <-time.After(time.Minute):
		t.Fatal("PowerOff waiting for the lock of a did not give up when its context ended")
	}
	require.Zero(t, overlaps.Load(), "PowerOff took the lock of a while Pause held it")
	require.ErrorIs(t, err, context.DeadlineExceeded, "PowerOff waited for Pause and gave up")

	// Another ID is not held up: Info on b completes while Pause still
	// holds a (the generous timeout only bounds a failure).
	bctx, bcancel := context.WithTimeout(t.Context(), time.Minute)
	defer bcancel()
	_, err = f.Info(bctx, "b")
	require.NoError(t, err, "Info on b while Pause holds a")

	unblock()
	require.NoError(t, <-done)
	info, err := f.Info(t.Context(), "a")
	require.NoError(t, err)
	assert.Equal(t, hypervisor.StatePaused, info.State, "the abandoned PowerOff did nothing")
	assert.Zero(t, overlaps.Load(), "calls that took the lock of a while Pause held it")
}

func TestBoundConsole(t *testing.T) {
	tests := []struct {
		in        string
		tail, max int
		want      string
	}{
		{"", 0, 0, ""},
		{"a\nb\nc\n", 0, 0, "a\nb\nc\n"},
		{"a\nb\nc\n", 1, 0, "c\n"},
		{"a\nb\nc\n", 2, 0, "b\nc\n"},
		{"a\nb\nc\n", 3, 0, "a\nb\nc\n"},
		{"a\nb\nc\n", 9, 0, "a\nb\nc\n"},
		{"a\nb\nc", 1, 0, "c"},
		{"a\nb\nc", 2, 0, "b\nc"},
		{"a\n\nc\n", 2, 0, "\nc\n"},
		{"abcdef\n", 0, 3, "ef\n"},
		{"a\nbcdef\n", 1, 4, "def\n"},
	}
	for _, tt := range tests {
		got := hypervisortest.BoundConsole([]byte(tt.in), tt.tail, tt.max)
		assert.Equal(t, tt.want, string(got), "BoundConsole(%q, %d, %d)", tt.in, tt.tail, tt.max)
	}
	big := bytes.Repeat([]byte("x"), hypervisor.DefaultConsoleMaxBytes+10)
	assert.Len(t, hypervisortest.BoundConsole(big, 0, 0), hypervisor.DefaultConsoleMaxBytes)
}
