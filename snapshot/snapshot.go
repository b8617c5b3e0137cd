package snapshot

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/google/uuid"
	"github.com/moby/moby/client"

	"github.com/dockervisor/dockervisor/errclass"
	"github.com/dockervisor/dockervisor/image"
	"github.com/dockervisor/dockervisor/image/engine"
	"github.com/dockervisor/dockervisor/internal/readahead"
	"github.com/dockervisor/dockervisor/internal/undo"
)

// Properties the pipeline sets on every snapshot image, as Nova does for
// Glance. A caller's property with one of these keys is refused.
const (
	// PropImageType is "snapshot" on every snapshot image.
	PropImageType = "image_type"
	// PropInstanceUUID holds the ID of the snapshotted instance; List and
	// Delete find an instance's snapshots by it.
	PropInstanceUUID = "instance_uuid"
	// PropBaseImageRef holds the store image the instance was spawned from.
	PropBaseImageRef = "base_image_ref"
	// PropEngineImageID holds the engine's ID of the committed image
	// ("sha256:...").
	PropEngineImageID = "docker_image_id"
)

// ImageTypeSnapshot is the value of [PropImageType].
const ImageTypeSnapshot = "snapshot"

// CommitRepository is the engine repository of the images the pipeline
// commits. Each commit gets its own tag (Request.Tag, or a random one), and
// the image is removed from the engine once it is in the store (or the
// snapshot failed). One that a killed process left behind is removed by
// whoever recorded its tag (see "Crashes" in the package documentation):
// the docker backend's Reconcile, Destroy and PruneImages do.
const CommitRepository = "dockervisor/snapshot"

// DefaultCleanupTimeout bounds the rollback of a failed snapshot: each
// step, and the retries of the deletion of a half-written store image while
// the store cannot be reached.
const DefaultCleanupTimeout = 30 * time.Second

// ErrInvalidRequest means the request was refused before anything was
// done: no store, no container, a reserved property. It is an
// [image.ErrInvalidArgument].
var ErrInvalidRequest = errclass.New("snapshot: invalid request", image.ErrInvalidArgument)

// Engine is the part of the moby client the pipeline uses.
type Engine interface {
	ContainerPause(ctx context.Context, id string, opts client.ContainerPauseOptions) (client.ContainerPauseResult, error)
	ContainerUnpause(ctx context.Context, id string, opts client.ContainerUnpauseOptions) (client.ContainerUnpauseResult, error)
	ContainerCommit(ctx context.Context, id string, opts client.ContainerCommitOptions) (client.ContainerCommitResult, error)
	ImageRemove(ctx context.Context, ref string, opts client.ImageRemoveOptions) (client.ImageRemoveResult, error)
	engine.SaveAPI
}

var _ Engine = (*client.Client)(nil)

// Phase is a step of the pipeline, as reported to a [Request]'s Progress.
type Phase string

// The phases, in the order they are reported. PhasePausing is reported
// only for a running container.
const (
	PhasePausing    Phase = "pausing"
	PhaseCommitting Phase = "committing"
	PhaseUploading  Phase = "uploading"
	PhaseDone       Phase = "done"
)

// Progress is one progress report: the phase, and while uploading (and
// when done) the bytes written to the store so far.
type Progress struct {
	Phase Phase `json:"phase"`
	Bytes int64 `json:"bytes"`
}

// progressEvery is how many uploaded bytes pass between two progress
// reports of the uploading phase.
const progressEvery = 1 << 20

// Request is one snapshot to take.
type Request struct {
	// ContainerID is the engine container to snapshot. Required.
	ContainerID string
	// Running says the container's process runs: it is paused before the
	// commit and unpaused after it. A paused or stopped container is
	// committed as it is.
	Running bool
	// Name is the store image's display name; any string the store takes
	// (it never reaches the engine). Empty means "snapshot of
	// <InstanceID>".
	Name string
	// InstanceID is stored as [PropInstanceUUID]; BaseImageRef as
	// [PropBaseImageRef] when not empty.
	InstanceID   string
	BaseImageRef string
	// Properties are the caller's store properties, stored as they are.
	Properties map[string]string
	// Progress, when set, receives each phase and the upload's progress.
	// It is called synchronously from the pipeline and must not block.
	Progress func(Progress)
	// CleanupTimeout bounds the rollback; zero means DefaultCleanupTimeout.
	CleanupTimeout time.Duration
	// Logger receives debug messages, and a warning for each step a
	// failed snapshot cannot undo; nil discards them.
	Logger *slog.Logger
	// Tag is the tag of the committed image in [CommitRepository]; empty
	// means a random one. A caller that must find the image again after
	// a crash (the driver records it before the snapshot begins) sets it:
	// [NewCommitTag] makes one.
	Tag string
	// ImageID is the ID of the store image to create; empty means a
	// random UUID. Like Tag, a caller sets it to find a half-made
	// snapshot again after a crash.
	ImageID string
}

// NewCommitTag returns a random tag for a committed image: prefix (which
// may be empty: it lets a caller tell its own images) and 24 random hex
// digits. It panics if prefix holds characters a tag cannot hold.
func NewCommitTag(prefix string) string {
	t := prefix + commitTag()
	if !validTag.MatchString(t) {
		panic("snapshot: invalid commit tag prefix " + prefix)
	}
	return t
}

// validTag is the grammar of an engine image tag.
var validTag = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)

// Error is the error of a failed snapshot: the phase that failed and its
// cause, which it wraps. Cleanup is what went wrong while rolling back,
// such as a store image that could not be deleted because the store stayed
// unreachable; it is reported, not wrapped, so that the error keeps
// exactly the class of its cause.
type Error struct {
	Phase   Phase
	Err     error
	Cleanup error
}

// Error describes the failed phase, the cause and any cleanup failure.
func (e *Error) Error() string {
	s := "snapshot: " + string(e.Phase) + ": " + e.Err.Error()
	if e.Cleanup != nil {
		s += " (rollback incomplete: " + e.Cleanup.Error() + ")"
	}
	return s
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Take snapshots the container of req into w: pause it if it runs, commit
// it under a private reference, unpause it (whatever the commit did), save
// the committed image by that exact reference and stream the save into w,
// and remove the committed image from the engine (as soon as the save has
// ended, while the store finishes the upload). It returns the stored
// metadata once both are done.
//
// Nothing is buffered: the engine's save stream is the body of the store's
// Create, so memory stays a copy buffer whatever the image size, and no
// temporary file is written.
//
// The undo of each step is registered before the step runs. On failure
// (ctx ended, the engine or the store failed, the store refused the name
// or a property) the store image is deleted (retried until the cleanup
// timeout while the store cannot be reached), the committed image is
// removed and the container is unpaused, and the error is an *[Error]. The
// pause and the commit are not abandoned half-way when ctx ends: the
// engine would finish them anyway, so the pipeline waits for them and then
// undoes them.
func Take(ctx context.Context, eng Engine, w image.Writer, req Request) (image.Metadata, error) {
	if eng == nil || w == nil {
		return image.Metadata{}, &Error{Phase: PhasePausing, Err: fmt.Errorf("%w: nil engine or store", ErrInvalidRequest)}
	}
	meta, err := req.metadata()
	if err != nil {
		return image.Metadata{}, &Error{Phase: PhasePausing, Err: err}
	}
	p := &pipeline{eng: eng, w: w, req: req, log: req.Logger}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	p.u.StepTimeout = req.CleanupTimeout
	if p.u.StepTimeout <= 0 {
		p.u.StepTimeout = DefaultCleanupTimeout
	}
	p.u.Log, p.u.Op, p.u.ID = p.log, "snapshot", req.InstanceID
	if p.u.ID == "" {
		p.u.ID = req.ContainerID
	}
	out, err := p.run(ctx, meta)
	if err != nil {
		// The rollback logs each step it cannot undo at Warn.
		cerr := p.u.Rollback(ctx)
		return image.Metadata{}, &Error{Phase: p.phase, Err: err, Cleanup: cerr}
	}
	p.u.Release()
	return out, nil
}

// metadata checks the request and returns the store metadata to create.
func (r Request) metadata() (image.Metadata, error) {
	if strings.TrimSpace(r.ContainerID) == "" {
		return image.Metadata{}, fmt.Errorf("%w: empty container ID", ErrInvalidRequest)
	}
	if r.Tag != "" && !validTag.MatchString(r.Tag) {
		return image.Metadata{}, fmt.Errorf("%w: invalid commit tag %q", ErrInvalidRequest, r.Tag)
	}
	props := make(map[string]string, len(r.Properties)+4)
	for k, v := range r.Properties {
		switch k {
		case PropImageType, PropInstanceUUID, PropBaseImageRef, PropEngineImageID:
			return image.Metadata{}, fmt.Errorf("%w: property %q is set by the snapshot", ErrInvalidRequest, k)
		}
		props[k] = v
	}
	props[PropImageType] = ImageTypeSnapshot
	if r.InstanceID != "" {
		props[PropInstanceUUID] = r.InstanceID
	}
	if r.BaseImageRef != "" {
		props[PropBaseImageRef] = r.BaseImageRef
	}
	name := r.Name
	if name == "" {
		name = "snapshot of " + r.InstanceID
		if r.InstanceID == "" {
			name = "snapshot of " + r.ContainerID
		}
	}
	id := r.ImageID
	if id == "" {
		id = uuid.NewString()
	}
	return image.Metadata{
		ID:              id,
		Name:            name,
		ContainerFormat: image.ContainerFormatDocker,
		DiskFormat:      image.DiskFormatRaw,
		Properties:      props,
	}, nil
}

type pipeline struct {
	eng   Engine
	w     image.Writer
	req   Request
	log   *slog.Logger
	u     undo.Stack
	phase Phase
}

func (p *pipeline) report(ph Phase, n int64) {
	p.phase = ph
	if p.req.Progress != nil {
		p.req.Progress(Progress{Phase: ph, Bytes: n})
	}
}

func (p *pipeline) run(ctx context.Context, meta image.Metadata) (image.Metadata, error) {
	cid := p.req.ContainerID
	// The engine's own pause-on-commit is turned off: the pause is ours,
	// explicit, so that its undo is registered and an agent's view stays
	// right.
	var unpause func(context.Context) error
	if p.req.Running {
		p.report(PhasePausing, 0)
		var once sync.Once
		var uerr error
		unpause = func(ctx context.Context) error {
			once.Do(func() {
				_, err := p.eng.ContainerUnpause(ctx, cid, client.ContainerUnpauseOptions{})
				if err != nil && !cerrdefs.IsConflict(err) && !cerrdefs.IsNotFound(err) {
					uerr = fmt.Errorf("unpause %s: %w", cid, err)
				}
			})
			return uerr
		}
		p.u.Push(unpause)
		// Not abandoned when ctx ends (see Take): a pause sent and then
		// given up on could freeze the container after the rollback.
		if err := p.whole(ctx, func(ctx context.Context) error {
			_, err := p.eng.ContainerPause(ctx, cid, client.ContainerPauseOptions{})
			return err
		}); err != nil {
			return image.Metadata{}, fmt.Errorf("pause %s: %w", cid, err)
		}
		if err := ctx.Err(); err != nil {
			return image.Metadata{}, err
		}
	}

	p.report(PhaseCommitting, 0)
	tag := p.req.Tag
	if tag == "" {
		tag = commitTag()
	}
	ref := CommitRepository + ":" + tag
	// The committed image is removed once: in the background as soon as
	// the engine's save stream has ended (the engine is done with it while
	// the store still finishes the upload), or by the rollback.
	rm := newOnceTask(func() error {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.u.StepTimeout)
		defer cancel()
		return p.removeImage(rctx, ref)
	})
	p.u.Push(func(context.Context) error { return rm.wait() })
	var engineID string
	cerr := p.whole(ctx, func(ctx context.Context) error {
		res, err := p.eng.ContainerCommit(ctx, cid, client.ContainerCommitOptions{Reference: ref, NoPause: true})
		engineID = res.ID
		return err
	})
	// The engine stages the whole image before the first byte of its save
	// arrives: the save is requested as soon as the commit is there, so
	// that the unpause and the store's image record are made meanwhile.
	var src *pendingSource
	if cerr == nil {
		src = openInBackground(ctx, func(ctx context.Context) (io.ReadCloser, error) { return engine.Save(ctx, p.eng, ref) })
		defer src.Close()
	}
	if unpause != nil {
		// After the commit, whatever it did.
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.u.StepTimeout)
		uerr := unpause(uctx)
		cancel()
		if cerr == nil && uerr != nil {
			return image.Metadata{}, uerr
		}
	}
	if cerr != nil {
		return image.Metadata{}, fmt.Errorf("commit %s: %w", cid, cerr)
	}
	if err := ctx.Err(); err != nil {
		return image.Metadata{}, err
	}
	meta.Properties[PropEngineImageID] = engineID

	p.report(PhaseUploading, 0)
	id := meta.ID
	p.u.Push(func(ctx context.Context) error { return p.deleteStoreImage(ctx, id) })
	ra := readahead.New(eofHook{r: src, fn: rm.start}, readAheadChunk, readAheadChunks)
	defer ra.Close()
	cr := &countingReader{r: ra, report: func(n int64) { p.report(PhaseUploading, n) }}
	stored, err := p.w.Create(ctx, meta, cr)
	if err != nil {
		return image.Metadata{}, err
	}
	if err := ctx.Err(); err != nil {
		return image.Metadata{}, err
	}
	if err := rm.wait(); err != nil {
		return image.Metadata{}, err
	}
	p.report(PhaseDone, cr.n)
	return stored, nil
}

// whole runs fn to its end even when ctx ends first, bounded by the
// cleanup timeout, and returns fn's error.
func (p *pipeline) whole(ctx context.Context, fn func(ctx context.Context) error) error {
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), max(p.u.StepTimeout, 10*time.Minute))
	defer cancel()
	return fn(wctx)
}

// removeImage removes the committed image ref. A missing one is removed.
func (p *pipeline) removeImage(ctx context.Context, ref string) error {
	_, err := p.eng.ImageRemove(ctx, ref, client.ImageRemoveOptions{PruneChildren: true})
	if err != nil && !cerrdefs.IsNotFound(err) {
		return fmt.Errorf("remove committed image %s: %w", ref, err)
	}
	return nil
}

// deleteStoreImage deletes the store image id, retrying while the store is
// unavailable (it may come back within the cleanup timeout, as a restarted
// Glance does) until ctx ends.
func (p *pipeline) deleteStoreImage(ctx context.Context, id string) error {
	delay := 200 * time.Millisecond
	for {
		err := p.w.Delete(ctx, id)
		if err == nil {
			return nil
		}
		if !errors.Is(err, image.ErrUnavailable) {
			return fmt.Errorf("delete store image %s: %w", id, err)
		}
		p.log.DebugContext(ctx, "store unavailable, retrying delete", "id", id, "err", err)
		select {
		case <-ctx.Done():
			return fmt.Errorf("delete store image %s: store unavailable until the cleanup timeout: %w", id, err)
		case <-time.After(delay):
		}
		delay = min(2*delay, 2*time.Second)
	}
}

// Read-ahead between the engine's save stream and the store: a bounded
// number of fixed chunks, so memory stays the same whatever the size.
const (
	readAheadChunk  = 1 << 20
	readAheadChunks = 4
)

// pendingSource is a source opened in the background: a Read waits for
// the open and returns its error, if any.
type pendingSource struct {
	ready  chan struct{}
	cancel context.CancelFunc
	rc     io.ReadCloser
	err    error
}

// openInBackground starts open(ctx) and returns the source it opens.
func openInBackground(ctx context.Context, open func(context.Context) (io.ReadCloser, error)) *pendingSource {
	ctx, cancel := context.WithCancel(ctx)
	s := &pendingSource{ready: make(chan struct{}), cancel: cancel}
	go func() {
		defer close(s.ready)
		s.rc, s.err = open(ctx)
	}()
	return s
}

func (s *pendingSource) Read(p []byte) (int, error) {
	<-s.ready
	if s.err != nil {
		return 0, s.err
	}
	return s.rc.Read(p)
}

// Close cancels an open still under way, waits for it and closes what it
// opened.
func (s *pendingSource) Close() error {
	s.cancel()
	<-s.ready
	if s.rc != nil {
		return s.rc.Close()
	}
	return nil
}

// onceTask runs run once, in its own goroutine, when first started or
// waited for; every wait returns its error.
type onceTask struct {
	once sync.Once
	done chan struct{}
	err  error
	run  func() error
}

func newOnceTask(run func() error) *onceTask {
	return &onceTask{done: make(chan struct{}), run: run}
}

func (t *onceTask) start() {
	t.once.Do(func() {
		go func() {
			defer close(t.done)
			t.err = t.run()
		}()
	})
}

func (t *onceTask) wait() error {
	t.start()
	<-t.done
	return t.err
}

// eofHook calls fn when r reaches its end.
type eofHook struct {
	r  io.Reader
	fn func()
}

func (h eofHook) Read(p []byte) (int, error) {
	n, err := h.r.Read(p)
	if err == io.EOF {
		h.fn()
	}
	return n, err
}

// countingReader counts the bytes read and reports them every
// progressEvery bytes.
type countingReader struct {
	r      io.Reader
	n      int64
	last   int64
	report func(int64)
}

func (c *countingReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.n += int64(n)
	if c.n-c.last >= progressEvery || (err == io.EOF && c.n != c.last) {
		c.last = c.n
		c.report(c.n)
	}
	return n, err
}

func commitTag() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// List returns the snapshots of instance id in r (the images whose
// [PropInstanceUUID] is id and [PropImageType] is "snapshot").
func List(ctx context.Context, r image.Reader, instanceID string) ([]image.Metadata, error) {
	if instanceID == "" {
		return nil, fmt.Errorf("%w: empty instance ID", ErrInvalidRequest)
	}
	return r.List(ctx, image.ListOptions{Properties: map[string]string{PropInstanceUUID: instanceID, PropImageType: ImageTypeSnapshot}})
}

// DeleteAll deletes every snapshot of instance id from s and returns how
// many it deleted. It goes on after a failed deletion and joins the errors.
func DeleteAll(ctx context.Context, s image.Store, instanceID string) (int, error) {
	ms, err := List(ctx, s, instanceID)
	if err != nil {
		return 0, err
	}
	var errs []error
	n := 0
	for _, m := range ms {
		if err := s.Delete(ctx, m.ID); err != nil {
			errs = append(errs, err)
			continue
		}
		n++
	}
	return n, errors.Join(errs...)
}
