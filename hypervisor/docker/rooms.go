package docker

import (
	"context"
	"time"

	"github.com/moby/moby/api/types/container"

	"github.com/dockervisor/dockervisor/configdrive"
	"github.com/dockervisor/dockervisor/hypervisor"
	"github.com/dockervisor/dockervisor/image"
	"github.com/dockervisor/dockervisor/network"
)

// The narrow views a room has of another room: a room that needs only a
// few things of another holds one of these (in a field named as the
// core's pointer to that room, which it hides) instead of the whole room.

// instanceReader reads an instance's container and record
// (lifecycleRoom).
type instanceReader interface {
	lockCurrent(ctx context.Context, id string) (t *target, unlock func(), err error)
	current(ctx context.Context, api APIClient, id string) (*target, error)
	inspect(ctx context.Context, api APIClient, id string) (container.InspectResponse, error)
	// pauseRequest pauses or unpauses a container past the engine's
	// late word on a pause (pauseecho.go).
	pauseRequest(ctx context.Context, api APIClient, cid string, pause bool) error
}

// recordWriter writes an instance's record and the intent journal
// around a change of it (recordRoom).
type recordWriter interface {
	beginOp(t *target, op string) *pendingOp
	endOp(t *target) error
	save(t *target, rec instanceRecord) error
}

// stopIntender says whether the driver meant an exit (recordRoom).
type stopIntender interface {
	intended(cid string, exit time.Time) bool
}

// osKind tells an OS instance's container from an application's
// (osRoom).
type osKind interface {
	isOS(c container.InspectResponse) bool
}

// cgroupNoter takes the engine host's cgroup version (osRoom).
type cgroupNoter interface {
	noteCgroupVersion(v string)
}

// engineLocality says whether the engine runs on this host (hostRoom).
type engineLocality interface {
	isLocalEngine() bool
}

// guestRefresher rewrites the guest's data after its VIFs change
// (guestRoom).
type guestRefresher interface {
	refreshGuest(ctx context.Context, id string, vifs []network.VIF) error
}

// guestExecer runs a command in an instance (guestRoom).
type guestExecer interface {
	exec(ctx context.Context, id string, spec hypervisor.ExecSpec) (hypervisor.ExecResult, error)
}

// bootDataWriter writes an instance's boot data (guestRoom).
type bootDataWriter interface {
	writeBootData(ctx context.Context, id string, in configdrive.Instance, drive bool) error
}

// snapshotter gives the image store snapshots go to (imageRoom).
type snapshotter interface {
	snapshotWriter() image.Writer
}
