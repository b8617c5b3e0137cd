package hypervisortest

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"

	"github.com/dockervisor/dockervisor/hypervisor"
	"github.com/dockervisor/dockervisor/image"
)

// Snapshot writes a small tar archive describing the instance to the store
// given with [WithSnapshotStore], named req.Name (default
// "snapshot-<id>"), with req.Properties plus "instance_id". Without a store
// it returns an error wrapping [hypervisor.ErrNotSupported].
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
	f.mu.Unlock()
	if err != nil {
		return image.Metadata{}, hypervisor.WrapOp(op, id, err)
	}

	// The per-ID lock is held, so the instance cannot change while the
	// store is written.
	archive, err := snapshotTar(inst)
	if err != nil {
		return image.Metadata{}, hypervisor.WrapOp(op, id, err)
	}
	meta := image.Metadata{
		Name:            req.Name,
		ContainerFormat: image.ContainerFormatDocker,
		DiskFormat:      image.DiskFormatRaw,
		Properties:      maps.Clone(req.Properties),
	}
	if meta.Name == "" {
		meta.Name = "snapshot-" + id
	}
	if meta.Properties == nil {
		meta.Properties = make(map[string]string)
	}
	meta.Properties["instance_id"] = id
	stored, err := f.opts.snapshot.Create(ctx, meta, bytes.NewReader(archive))
	if err != nil {
		return image.Metadata{}, hypervisor.WrapOp(op, id, fmt.Errorf("store snapshot: %w", err))
	}
	return stored, nil
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
