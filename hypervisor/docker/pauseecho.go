package docker

import (
	"context"
	"fmt"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/dockervisor/dockervisor/hypervisor"
	"github.com/dockervisor/dockervisor/snapshot"
)

// The engine's late word on a pause. Docker's event monitor sets a
// container's paused flag again when containerd's notice of a pause or
// an unpause reaches it, unless the flag says so already. A notice that
// arrives after the next request has flipped the flag (the monitor runs
// behind, as on a busy host) flips it back for a while: after an
// unpause, a thawed container reads paused until the unpause's own
// notice arrives (and the engine logs pause and unpause again); after
// the pause that follows, a frozen container reads running until that
// pause's notice arrives. Whoever reads the engine meanwhile is misled:
// a Pause finds the instance paused already and does nothing, an
// Unpause finds it running and leaves it frozen, and the engine refuses
// another client's request ("already paused", "not paused"). On a local
// engine the driver asks the kernel: when the engine's flag and the
// container's freezer (cgroup v1 freezer.state, v2 cgroup.freeze)
// disagree, it waits until the engine catches up.
// An engine on another machine is taken at its word.
const (
	// pauseEchoWait bounds that wait: past it, the engine's word holds
	// (a freezer set outside the engine, say).
	pauseEchoWait = 5 * time.Second
	// pauseEchoPoll is how often the engine is asked again meanwhile.
	pauseEchoPoll = 5 * time.Millisecond
)

// settlePause returns container c (inspected by the caller) once the
// engine's word on its pause agrees with the kernel's, inspecting it
// again within ctx and pauseEchoWait (see above).
func (d *lifecycleRoom) settlePause(ctx context.Context, api APIClient, c container.InspectResponse) (container.InspectResponse, error) {
	if !d.hosts.isLocalEngine() {
		return c, nil
	}
	deadline := time.Now().Add(pauseEchoWait)
	for d.pauseDisagrees(ctx, api, c) && time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			return c, ctx.Err()
		case <-time.After(pauseEchoPoll):
		}
		res, err := api.ContainerInspect(ctx, c.ID, client.ContainerInspectOptions{})
		if err != nil {
			return c, classify(err, hypervisor.ErrNotFound)
		}
		c = res.Container
	}
	return c, nil
}

// pauseDisagrees reports whether the engine's paused flag of running
// container c and the kernel's freezer disagree (read where the stats
// read the container's cgroups; false if they cannot be read here).
func (d *lifecycleRoom) pauseDisagrees(ctx context.Context, api APIClient, c container.InspectResponse) bool {
	if c.State == nil || !c.State.Running {
		return false
	}
	r := d.hosts.cgroups(ctx, api, c.ID)
	if r == nil {
		return false
	}
	frozen, err := r.frozen(c.ID)
	return err == nil && frozen != c.State.Paused
}

// pauseRequest sends a pause (pause true) or an unpause of container
// cid. A request the engine refuses as a conflict while its word on the
// pause lags (see above) is sent again once the engine has caught up,
// if the container then still needs it; if it does not (it is paused,
// or runs, already), the conflict is returned.
func (d *lifecycleRoom) pauseRequest(ctx context.Context, api APIClient, cid string, pause bool) error {
	send := func() error {
		var err error
		if pause {
			_, err = api.ContainerPause(ctx, cid, client.ContainerPauseOptions{})
		} else {
			_, err = api.ContainerUnpause(ctx, cid, client.ContainerUnpauseOptions{})
		}
		return err
	}
	err := send()
	if !pauseRefused(err) {
		return err
	}
	// A conflict from here on, whatever status the engine gave it.
	err = fmt.Errorf("%w: %w", cerrdefs.ErrConflict, err)
	if !d.hosts.isLocalEngine() {
		return err
	}
	res, ierr := api.ContainerInspect(ctx, cid, client.ContainerInspectOptions{})
	if ierr != nil {
		return err
	}
	c, serr := d.settlePause(ctx, api, res.Container)
	if serr == nil && c.State != nil && c.State.Running && c.State.Paused != pause {
		return send()
	}
	return err
}

// pauseRefused reports whether err is the engine refusing a pause of a
// paused container (a conflict) or an unpause of a running one (Docker
// 20.10 answers that with a server error whose text says so).
func pauseRefused(err error) bool {
	if err == nil {
		return false
	}
	msg := strings.ToLower(err.Error())
	return isConflict(err) || strings.Contains(msg, "is not paused") || strings.Contains(msg, "is already paused")
}

// settlingPauses is a snapshot's engine whose pause and unpause go
// through pauseRequest.
type settlingPauses struct {
	snapshot.Engine
	life instanceReader
	api  APIClient
}

func (e settlingPauses) ContainerPause(ctx context.Context, id string, _ client.ContainerPauseOptions) (client.ContainerPauseResult, error) {
	return client.ContainerPauseResult{}, e.life.pauseRequest(ctx, e.api, id, true)
}

func (e settlingPauses) ContainerUnpause(ctx context.Context, id string, _ client.ContainerUnpauseOptions) (client.ContainerUnpauseResult, error) {
	return client.ContainerUnpauseResult{}, e.life.pauseRequest(ctx, e.api, id, false)
}
