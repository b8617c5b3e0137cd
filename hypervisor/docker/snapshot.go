package docker

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/moby/moby/client"

	"github.com/dockervisor/dockervisor/hypervisor"
	"github.com/dockervisor/dockervisor/image"
	"github.com/dockervisor/dockervisor/snapshot"
)

// WithSnapshotStore makes Snapshot store instance snapshots in w (see
// package snapshot). Without it, snapshots go to the image store of
// WithImageStore when that store can write (an image.Store), so that an
// instance can be spawned or rebuilt from its snapshot's ID; with neither,
// Snapshot returns ErrNotSupported and Capabilities().Snapshot is false.
func WithSnapshotStore(w image.Writer) Option {
	return func(o *options) error {
		if w == nil {
			return fmt.Errorf("%w: nil snapshot store", hypervisor.ErrInvalidArgument)
		}
		o.snapshots = w
		return nil
	}
}

// WithSnapshotProgress makes every Snapshot report its progress to fn: the
// instance ID, the phase (pausing, committing, uploading, done) and the
// bytes uploaded so far. fn is called from the snapshotting goroutine and
// must not block.
func WithSnapshotProgress(fn func(id string, p snapshot.Progress)) Option {
	return func(o *options) error {
		if fn == nil {
			return fmt.Errorf("%w: nil snapshot progress function", hypervisor.ErrInvalidArgument)
		}
		o.snapshotProgress = fn
		return nil
	}
}

// snapshotWriter returns the store snapshots go to, or nil.
func (d *imageRoom) snapshotWriter() image.Writer {
	if d.opts.snapshots != nil {
		return d.opts.snapshots
	}
	if w, ok := d.opts.images.(image.Writer); ok {
		return w
	}
	return nil
}

// Snapshot stores the instance's file system as a new image in the
// snapshot store (see WithSnapshotStore) and returns its metadata: a
// running instance is paused explicitly for the commit and unpaused after
// it, and the paused and unpaused events this causes carry
// Cause hypervisor.CauseSnapshot. The image's name is req.Name (any
// string; empty means "snapshot of <id>"), its properties req.Properties
// plus image_type=snapshot, instance_uuid, base_image_ref (the image the
// instance was spawned from) and docker_image_id; a property the snapshot
// sets itself is ErrInvalidArgument. See package snapshot for the steps.
//
// A failure leaves no store image, no committed image on the engine and
// the instance in its state (running if it ran). A store that refuses the
// name or a property is ErrInvalidArgument; a store or engine that fails
// or goes away, ErrUnavailable. The instance's lock is held throughout.
func (d *imageRoom) Snapshot(ctx context.Context, id string, req hypervisor.SnapshotRequest) (image.Metadata, error) {
	m, err := d.snapshot(ctx, id, req)
	return m, opErr("snapshot", id, err)
}

func (d *imageRoom) snapshot(ctx context.Context, id string, req hypervisor.SnapshotRequest) (_ image.Metadata, err error) {
	w := d.snapshotWriter()
	if w == nil {
		if err := hypervisor.ValidateID(id); err != nil {
			return image.Metadata{}, err
		}
		return image.Metadata{}, fmt.Errorf("%w: no writable image store is configured (WithSnapshotStore)", hypervisor.ErrNotSupported)
	}
	t, unlock, err := d.life.lockCurrent(ctx, id)
	if err != nil {
		return image.Metadata{}, err
	}
	defer unlock()
	if _, err := hypervisor.OpSnapshot.Check(id, t.cur); err != nil {
		return image.Metadata{}, err
	}
	spec, _ := d.specFromLabels(t.c.Config.Labels)
	running := t.cur == hypervisor.StateRunning
	// The journal names the committed image, the store image and the
	// pause before any of them exists, so that a new Driver undoes a
	// snapshot whose process died (recover.go); a user's pause is no
	// snapshot's.
	p := d.records.beginOp(t, pendSnapshot)
	p.Paused = running
	p.CommitRef = snapshot.CommitRepository + ":" + snapshot.NewCommitTag(d.records.commitTagPrefix())
	p.StoreImage = uuid.NewString()
	if err := d.records.save(t, t.rec); err != nil {
		return image.Metadata{}, err
	}
	defer func() {
		if eerr := d.records.endOp(t); eerr != nil {
			err = errors.Join(err, eerr)
		}
	}()
	sreq := snapshot.Request{
		Tag:            strings.TrimPrefix(p.CommitRef, snapshot.CommitRepository+":"),
		ImageID:        p.StoreImage,
		ContainerID:    t.cid,
		Running:        running,
		Name:           req.Name,
		InstanceID:     id,
		BaseImageRef:   spec.Image,
		Properties:     req.Properties,
		CleanupTimeout: d.cleanupTimeout,
		Logger:         d.log,
	}
	if fn := d.opts.snapshotProgress; fn != nil {
		sreq.Progress = func(p snapshot.Progress) { fn(id, p) }
	}
	if running {
		done := d.marks.begin(t.cid)
		defer done()
	}
	eng := sendingCommit{Engine: settlingPauses{Engine: t.api, life: d.life, api: t.api}, sending: func() error { return d.records.markSent(t, "commit") }}
	m, err := snapshot.Take(ctx, eng, w, sreq)
	if err != nil {
		if se, ok := errors.AsType[*snapshot.Error](err); ok && se.Cleanup != nil {
			// The rollback is incomplete: the journal stays, so that the
			// next call that takes the instance's turn finishes it.
			t.pending = nil
		}
		return image.Metadata{}, classify(err, hypervisor.ErrNotFound)
	}
	d.log.DebugContext(ctx, "snapshot stored", "id", id, "image", m.ID, "size", m.Size)
	return m, nil
}

// snapshotMarks remembers, per container, the time windows in which a
// snapshot paused and unpaused it, so that the event stream can mark
// those events as the snapshot's. The instance's lock is held during a
// snapshot, so no other call of this driver pauses the container then.
type snapshotMarks struct {
	mu sync.Mutex
	at map[string][]markWindow
}

// markWindow is one snapshot of a running container: from and to on the
// driver's clock (to is zero while the snapshot runs), and the engine's
// times of the first pause and unpause seen in it. A snapshot pauses and
// unpauses once, so only those two events are its own; a user's pause
// just after the snapshot, within the allowed skew, is not.
type markWindow struct {
	from, to           time.Time
	pausedAt, unpaused time.Time
}

// markSkew is the clock skew allowed between the engine and the driver.
const markSkew = time.Second

// begin opens a window for container cid and returns the function that
// closes it.
func (s *snapshotMarks) begin(cid string) func() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.at == nil {
		s.at = make(map[string][]markWindow)
	}
	now := time.Now()
	for k, ws := range s.at {
		if last := ws[len(ws)-1]; !last.to.IsZero() && now.Sub(last.to) > time.Hour {
			delete(s.at, k)
		}
	}
	ws := append(s.at[cid], markWindow{from: now})
	if len(ws) > 8 {
		ws = ws[len(ws)-8:]
	}
	s.at[cid] = ws
	i := len(ws) - 1
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if ws := s.at[cid]; i < len(ws) {
			ws[i].to = time.Now()
		}
	}
}

// cause returns hypervisor.CauseSnapshot when a pause or unpause of
// container cid at t (engine clock) falls in one of its snapshot windows.
// Every event stream of the driver sees the same engine times, so the
// first pause (unpause) a stream maps claims the window for all of them.
func (s *snapshotMarks) cause(cid string, t time.Time, pause bool) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	ws := s.at[cid]
	for i := range ws {
		w := &ws[i]
		if t.Before(w.from.Add(-markSkew)) || (!w.to.IsZero() && t.After(w.to.Add(markSkew))) {
			continue
		}
		at := &w.unpaused
		if pause {
			at = &w.pausedAt
		}
		if at.IsZero() {
			*at = t
		}
		if at.Equal(t) {
			return hypervisor.CauseSnapshot
		}
	}
	return ""
}

// sendingCommit is the engine of a snapshot, noting the commit request in
// the snapshot's journal just before it is sent (see pendingOp.Sent).
type sendingCommit struct {
	snapshot.Engine
	sending func() error
}

func (e sendingCommit) ContainerCommit(ctx context.Context, id string, opts client.ContainerCommitOptions) (client.ContainerCommitResult, error) {
	if err := e.sending(); err != nil {
		return client.ContainerCommitResult{}, err
	}
	return e.Engine.ContainerCommit(ctx, id, opts)
}
