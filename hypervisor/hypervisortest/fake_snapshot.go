package hypervisortest

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"strings"

	"github.com/dockervisor/dockervisor/hypervisor"
	"github.com/dockervisor/dockervisor/image"
)

// Properties a snapshot image carries (the same keys as package snapshot's,
// which the Docker backend sets).
const (
	propImageType     = "image_type"
	propInstanceUUID  = "instance_uuid"
	propBaseImageRef  = "base_image_ref"
	imageTypeSnapshot = "snapshot"
)

// Snapshot writes a small tar archive describing the instance to the store
// given with [WithSnapshotStore], named req.Name (default "snapshot of
// <id>"), with req.Properties plus image_type=snapshot, instance_uuid and
// base_image_ref (a caller property with one of these keys is
// ErrInvalidArgument). A running instance is paused for the write and
// unpaused after it, with paused and unpaused events whose Cause is
// [hypervisor.CauseSnapshot], as the Docker backend does. The new image's
// ID becomes an image Spawn and Rebuild accept. Without a store it returns
// an error wrapping [hypervisor.ErrNotSupported].
func (f *Fake) Snapshot(ctx context.Context, id string, req hypervisor.SnapshotRequest) (image.Metadata, error) {
	const op = "snapshot"
	if f.opts.snapshot == nil {
		if err := hypervisor.ValidateID(id); err != nil {
			return image.Metadata{}, hypervisor.WrapOp(op, id, err)
		}
		return image.Metadata{}, hypervisor.WrapOp(op, id, fmt.Errorf("%w: the fake has no snapshot store", hypervisor.ErrNotSupported))
	}
	unlock, err := f.begin(ctx, id)
	if err != nil {
		return image.Metadata{}, hypervisor.WrapOp(op, id, err)
	}
	defer unlock()

	f.mu.Lock()
	fi := f.instances[id]
	var inst hypervisor.Instance
	switch {
	case f.closed:
		err = errUnavailable()
	case fi == nil:
		err = errNotFound(id)
	default:
		_, err = hypervisor.OpSnapshot.Check(id, fi.inst.State)
		inst = fi.snapshotInstance()
	}
	running := err == nil && inst.State == hypervisor.StateRunning
	if running {
		f.emit(hypervisor.Event{Type: hypervisor.EventPaused, ID: id, Time: f.now(), Cause: hypervisor.CauseSnapshot})
	}
	f.mu.Unlock()
	if err != nil {
		return image.Metadata{}, hypervisor.WrapOp(op, id, err)
	}
	if running {
		defer func() {
			f.mu.Lock()
			f.emit(hypervisor.Event{Type: hypervisor.EventUnpaused, ID: id, Time: f.now(), Cause: hypervisor.CauseSnapshot})
			f.mu.Unlock()
		}()
	}

	// The per-ID lock is held, so the instance cannot change while the
	// store is written.
	meta := image.Metadata{
		Name:            req.Name,
		ContainerFormat: image.ContainerFormatDocker,
		DiskFormat:      image.DiskFormatRaw,
		Properties:      maps.Clone(req.Properties),
	}
	if meta.Name == "" {
		meta.Name = "snapshot of " + id
	}
	if meta.Properties == nil {
		meta.Properties = make(map[string]string)
	}
	for _, k := range []string{propImageType, propInstanceUUID, propBaseImageRef} {
		if _, ok := meta.Properties[k]; ok {
			return image.Metadata{}, hypervisor.WrapOp(op, id, fmt.Errorf("%w: property %q is set by the snapshot", hypervisor.ErrInvalidArgument, k))
		}
	}
	meta.Properties[propImageType] = imageTypeSnapshot
	meta.Properties[propInstanceUUID] = id
	meta.Properties[propBaseImageRef] = inst.Image
	archive, err := snapshotTar(inst)
	if err != nil {
		return image.Metadata{}, hypervisor.WrapOp(op, id, err)
	}
	stored, err := f.opts.snapshot.Create(ctx, meta, bytes.NewReader(archive))
	if err != nil {
		class := hypervisor.ErrUnavailable
		if errors.Is(err, image.ErrInvalidArgument) {
			class = hypervisor.ErrInvalidArgument
		}
		if ctx.Err() != nil {
			return image.Metadata{}, hypervisor.WrapOp(op, id, fmt.Errorf("store snapshot: %w", ctx.Err()))
		}
		return image.Metadata{}, hypervisor.WrapOp(op, id, fmt.Errorf("%w: store snapshot: %w", class, err))
	}
	f.AddImage(stored.ID)
	return stored, nil
}

// Rebuild gives the instance a new process from image, keeping
// everything else; see [hypervisor.Rebuilder]. A running instance runs
// again (a new PID); a stopped one is started and stopped again and left
// shut down. The backend ID changes, as a real backend's does.
func (f *Fake) Rebuild(ctx context.Context, id, img string) error {
	const op = "rebuild"
	if strings.TrimSpace(img) == "" {
		if err := hypervisor.ValidateID(id); err != nil {
			return hypervisor.WrapOp(op, id, err)
		}
		return hypervisor.WrapOp(op, id, fmt.Errorf("%w: empty image", hypervisor.ErrInvalidArgument))
	}
	return f.with(ctx, op, id, func(fi *fakeInstance) error {
		if _, err := hypervisor.OpRebuild.Check(id, fi.inst.State); err != nil {
			return err
		}
		if !f.images[img] {
			return fmt.Errorf("%w: %q is not registered with the fake", hypervisor.ErrImageNotFound, img)
		}
		wasRunning := fi.inst.State == hypervisor.StateRunning
		f.stop(fi, hypervisor.StateShutdown, 0)
		fi.inst.Image = img
		fi.inst.BackendID = randomHex(32)
		fi.console = nil
		f.start(fi)
		if !wasRunning {
			f.stop(fi, hypervisor.StateShutdown, 0)
		}
		return nil
	})
}
func snapshotTar(inst hypervisor.Instance) ([]byte, error) {
	desc, err := json.Marshal(inst)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "instance.json", Mode: 0o644, Size: int64(len(desc))}); err != nil {
		return nil, err
	}
	if _, err := tw.Write(desc); err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
