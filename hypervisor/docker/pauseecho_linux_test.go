package docker

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dockervisor/dockervisor/hypervisor"
)

// echoingEngine is the real engine with Docker's repeated pause made
// to happen on cue (pauseecho.go): for window after it begins, inspect
// reports container cid paused while its freezer is thawed, and a pause
// is refused as the engine refuses it ("already paused"). It begins
// after each unpause (echoAfterUnpause), or at the next pause, which it
// refuses (echoAtPause). The mirror image (lagAfterPause) is below.
type echoingEngine struct {
	APIClient
	cid    string
	window time.Duration

	mu               sync.Mutex
	until            time.Time
	echoAfterUnpause bool
	echoAtPause      bool
	// lagAfterPause: after each pause, for window, inspect reports the
	// frozen container running and an unpause is refused ("not paused"),
	// as when the engine takes the late notice of an earlier unpause
	// after a new pause.
	lagAfterPause bool
	lagUntil      time.Time
}

// set sets one of e's modes.
func (e *echoingEngine) set(mode *bool, on bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	*mode = on
}

func (e *echoingEngine) lagging() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return time.Now().Before(e.lagUntil)
}

func (e *echoingEngine) echoing() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return time.Now().Before(e.until)
}

func (e *echoingEngine) begin() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.until = time.Now().Add(e.window)
}

func (e *echoingEngine) ContainerInspect(ctx context.Context, id string, o client.ContainerInspectOptions) (client.ContainerInspectResult, error) {
	res, err := e.APIClient.ContainerInspect(ctx, id, o)
	if err == nil && res.Container.ID == e.cid && e.echoing() && res.Container.State.Running {
		res.Container.State.Paused = true
		res.Container.State.Status = container.StatePaused
	}
	if err == nil && res.Container.ID == e.cid && e.lagging() && res.Container.State.Running {
		res.Container.State.Paused = false
		res.Container.State.Status = container.StateRunning
	}
	return res, err
}

func (e *echoingEngine) ContainerPause(ctx context.Context, id string, o client.ContainerPauseOptions) (client.ContainerPauseResult, error) {
	e.mu.Lock()
	atPause := e.echoAtPause
	e.echoAtPause = false
	e.mu.Unlock()
	if atPause {
		e.begin()
	}
	if e.echoing() {
		return client.ContainerPauseResult{}, fmt.Errorf("container %s is already paused: %w", id, cerrdefs.ErrConflict)
	}
	res, err := e.APIClient.ContainerPause(ctx, id, o)
	e.mu.Lock()
	if err == nil && e.lagAfterPause {
		e.lagUntil = time.Now().Add(e.window)
	}
	e.mu.Unlock()
	return res, err
}

func (e *echoingEngine) ContainerUnpause(ctx context.Context, id string, o client.ContainerUnpauseOptions) (client.ContainerUnpauseResult, error) {
	if e.lagging() {
		// Docker 20.10's words, as a server error.
		return client.ContainerUnpauseResult{}, fmt.Errorf("error response from daemon: container %s is not paused", id)
	}
	res, err := e.APIClient.ContainerUnpause(ctx, id, o)
	e.mu.Lock()
	after := e.echoAfterUnpause
	e.mu.Unlock()
	if err == nil && after {
		e.begin()
	}
	return res, err
}

// frozen reports, from the kernel, whether instance id's container is
// frozen, and checks that the env's Driver says the same (the engine's
// own word may lag: it repeats pauses).
func (e *env) frozen(id string) bool {
	e.t.Helper()
	c := e.inspect(id)
	require.NotNil(e.t, c.State)
	r := newCgroupReader(c.State.Pid, c.ID)
	require.NotNil(e.t, r, "the kernel's cgroups of %s", id)
	frozen, err := r.frozen(c.ID)
	require.NoError(e.t, err, "the kernel's freezer of %s", id)
	thawed := !frozen
	// The state every operation starts from (Info's too, which also
	// samples stats: a second).
	cur, err := e.drv.lifecycleRoom.current(e.t.Context(), e.cli, id)
	require.NoError(e.t, err)
	assert.Equal(e.t, !thawed, cur.cur == hypervisor.StatePaused, "the driver's word on the pause of %s (%s) and the kernel's", id, cur.cur)
	return !thawed
}

// TestFreezerState reads the kernel's freezer of a real container as
// the engine pauses and unpauses it.
func TestFreezerState(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.spawn(e.spec("fz"))
	cid := e.inspect("fz").ID
	assert.False(t, e.frozen("fz"), "a running container is thawed")
	_, err := e.cli.ContainerPause(t.Context(), cid, client.ContainerPauseOptions{})
	require.NoError(t, err)
	assert.True(t, e.frozen("fz"), "a paused container is frozen")
	_, err = e.cli.ContainerUnpause(t.Context(), cid, client.ContainerUnpauseOptions{})
	require.NoError(t, err)
	assert.False(t, e.frozen("fz"), "an unpaused container is thawed")
	assert.Nil(t, newCgroupReader(0, cid), "no process: cannot tell")
}

// TestPauseAfterAnEngineEcho: a Pause right after an Unpause, while the
// engine repeats the earlier pause, pauses the instance (it used to find
// the instance paused already and do nothing), and so does a Pause whose
// request meets the start of the repeat (refused, then sent again).
func TestPauseAfterAnEngineEcho(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.spawn(e.spec("echo"))
	eng := &echoingEngine{APIClient: e.cli, cid: e.inspect("echo").ID, window: time.Second}
	d, err := New(append(e.opts, WithAPIClient(eng))...)
	require.NoError(t, err)
	t.Cleanup(func() { d.Close() })
	ctx := t.Context()

	t.Run("RepeatUnderWay", func(t *testing.T) {
		require.NoError(t, d.Pause(ctx, "echo"))
		eng.set(&eng.echoAfterUnpause, true)
		require.NoError(t, d.Unpause(ctx, "echo"))
		require.True(t, eng.echoing(), "the repeat is under way")
		require.NoError(t, d.Pause(ctx, "echo"))
		assert.True(t, e.frozen("echo"), "Pause during the engine's repeat pauses the instance")
		info, err := d.Info(ctx, "echo")
		require.NoError(t, err)
		assert.Equal(t, hypervisor.StatePaused, info.State)
		eng.set(&eng.echoAfterUnpause, false)
		require.NoError(t, d.Unpause(ctx, "echo"))
		assert.False(t, e.frozen("echo"))
	})
	t.Run("RepeatMeetsThePause", func(t *testing.T) {
		eng.set(&eng.echoAtPause, true)
		require.NoError(t, d.Pause(ctx, "echo"))
		assert.True(t, e.frozen("echo"), "Pause refused by the engine's repeat is sent again")
		require.NoError(t, d.Unpause(ctx, "echo"))
	})
	t.Run("LateWordAfterAPause", func(t *testing.T) {
		// The engine reads running for a while after a pause: an
		// Unpause then must still thaw the instance.
		eng.set(&eng.lagAfterPause, true)
		require.NoError(t, d.Pause(ctx, "echo"))
		require.True(t, eng.lagging(), "the engine's word lags")
		require.NoError(t, d.Unpause(ctx, "echo"))
		assert.False(t, e.frozen("echo"), "Unpause while the engine's word lags thaws the instance")
		eng.set(&eng.lagAfterPause, false)
	})
	t.Run("UnpauseDuringTheRepeat", func(t *testing.T) {
		// The instance runs: an Unpause while the engine repeats a pause
		// has nothing to do, and the instance goes on running.
		eng.begin()
		require.NoError(t, d.Unpause(ctx, "echo"))
		assert.False(t, e.frozen("echo"))
		info, err := d.Info(ctx, "echo")
		require.NoError(t, err)
		assert.Equal(t, hypervisor.StateRunning, info.State)
	})
}

// TestPauseUnpauseRounds pauses and unpauses an instance back to back
// on the real engine, where the engine repeats some of the pauses
// (pauseecho.go), and checks from the kernel after every call that the
// instance is frozen or thawed as asked. DOCKERVISOR_PAUSE_ROUNDS sets
// the number of rounds (default 100; the kernel lane runs 25: it checks
// the cgroup v2 freezer, which a few rounds show as well as many).
func TestPauseUnpauseRounds(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.spawn(e.spec("rounds"))
	ctx := t.Context()
	rounds := max(1, envInt("DOCKERVISOR_PAUSE_ROUNDS", 100))
	for i := range rounds {
		require.NoError(t, e.drv.Pause(ctx, "rounds"))
		require.True(t, e.frozen("rounds"), "round %d: paused", i)
		require.NoError(t, e.drv.Unpause(ctx, "rounds"))
		require.False(t, e.frozen("rounds"), "round %d: unpaused", i)
	}
}
