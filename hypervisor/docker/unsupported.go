package docker

import (
	"context"

	"github.com/dockervisor/dockervisor/hypervisor"
	"github.com/dockervisor/dockervisor/image"
)

// Snapshot returns ErrNotSupported: snapshots are not wired yet.
func (d *Driver) Snapshot(ctx context.Context, id string, req hypervisor.SnapshotRequest) (image.Metadata, error) {
	return image.Metadata{}, opErr("snapshot", id, notSupported("snapshot"))
}
