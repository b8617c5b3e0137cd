package docker

import (
	"context"
	"testing"
	"time"

	"github.com/moby/moby/client"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dockervisor/dockervisor/hypervisor"
)

// TestResizeKernelLimits checks a live resize where it lands: in the
// instance's cgroup, read from the kernel, with the same process, and
// after a reboot.
func TestResizeKernelLimits(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	e.spawn(e.spec("rk"))
	before := e.inspect("rk")
	require.NoError(t, e.drv.Resize(ctx, "rk", hypervisor.Flavor{VCPUs: 2, HardCPULimit: true, MemoryMB: 100}))
	after := e.inspect("rk")
	assert.Equal(t, before.State.Pid, after.State.Pid, "no restart")
	assert.Equal(t, wantLimits(2, 2, 100), readKernelLimits(t, after), "2 CPUs at the engine's 100 ms period")
	assert.Equal(t, int64(100<<20), after.HostConfig.MemorySwap, "swap changes with memory")

	require.NoError(t, e.drv.Reboot(ctx, "rk", hypervisor.RebootOptions{Hard: true}))
	assert.Equal(t, wantLimits(2, 2, 100), readKernelLimits(t, e.inspect("rk")), "after a reboot")

	// Dropping the hard cap leaves a cap at the host's CPU count.
	require.NoError(t, e.drv.Resize(ctx, "rk", hypervisor.Flavor{VCPUs: 1, MemoryMB: 100}))
	f, err := e.drv.facts(ctx, e.drv.api)
	require.NoError(t, err)
	assert.Equal(t, wantLimits(1, f.ncpu, 100), readKernelLimits(t, e.inspect("rk")))

	// A hard cap beyond the host is a *LimitError that changes nothing.
	err = e.drv.Resize(ctx, "rk", hypervisor.Flavor{VCPUs: f.ncpu + 1, HardCPULimit: true, MemoryMB: 100})
	require.ErrorIs(t, err, hypervisor.ErrInvalidArgument)
	_, ok := errorsAs[*hypervisor.LimitError](err)
	assert.True(t, ok)
	info, err := e.drv.Info(ctx, "rk")
	require.NoError(t, err)
	assert.Equal(t, 1, info.VCPUs)

	// A new Driver on the same state sees the resized flavor.
	info, err = e.newDriver().Info(ctx, "rk")
	require.NoError(t, err)
	assert.Equal(t, int64(100), info.MemoryMB)

	// A rebuild keeps the resized limits, not the spawn-time ones.
	require.NoError(t, e.drv.Rebuild(ctx, "rk", e.image))
	assert.Equal(t, wantLimits(1, 0, 100), readKernelLimits(t, e.inspect("rk")), "after a rebuild: the flavor, without the cap a live resize left")
}

// TestEventReasonOOM runs a guest that outgrows its memory limit: the
// kernel's OOM killer kills it and the event says so, from the engine's
// report or, where the engine missed it (often, on cgroup v2 with
// containerd 1.6), from the kernel's log, which is checked on its own as
// well. A guest killed with SIGKILL by someone else is not reported as an
// OOM kill.
func TestEventReasonOOM(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	evs, errc := e.drv.Events(ctx)
	exitOf := func(id string) hypervisor.Event {
		t.Helper()
		for {
			select {
			case ev, ok := <-evs:
				if !ok {
					t.Fatalf("stream ended: %v", <-errc)
				}
				if ev.ID == id && (ev.Type == hypervisor.EventCrashed || ev.Type == hypervisor.EventStopped) {
					return ev
				}
			case <-ctx.Done():
				t.Fatalf("no exit event of %s", id)
			}
		}
	}

	spec := e.spec("oom")
	spec.MemoryMB = 16
	// The allocation waits for the test's word: an exit before Spawn has
	// returned would count as part of the spawn.
	spec.Command = []string{"sh", "-c", "until [ -e /tmp/go ]; do sleep 0.05; done; exec dd if=/dev/zero of=/dev/null bs=64M count=1"}
	e.spawn(spec)
	e.execOut("oom", "touch", "/tmp/go")
	cid := e.inspect("oom").ID
	ev := exitOf("oom")
	assert.Equal(t, hypervisor.EventCrashed, ev.Type)
	assert.Equal(t, hypervisor.ReasonOOMKilled, ev.Reason)
	assert.Equal(t, 137, ev.ExitCode)
	assert.Equal(t, hypervisor.StateCrashed, e.state("oom"))
	p, ok := e.drv.ooms.process(cid)
	require.True(t, ok, "the driver knows the process it started")
	assert.True(t, kernelOOMKill(cid, p.pid, p.at.Add(-oomKillSkew), ev.Time.Add(oomKillSkew)), "the kernel's log names the kill of process %d", p.pid)
	assert.True(t, kernelOOMKill(cid, 0, p.at.Add(-oomKillSkew), ev.Time.Add(oomKillSkew)), "and the container's cgroup")

	e.spawn(e.spec("kill9"))
	cid = e.inspect("kill9").ID
	_, err := e.cli.ContainerKill(ctx, cid, client.ContainerKillOptions{Signal: "KILL"})
	require.NoError(t, err)
	ev = exitOf("kill9")
	assert.Equal(t, hypervisor.EventCrashed, ev.Type)
	assert.Equal(t, hypervisor.ReasonExternal, ev.Reason, "a SIGKILL through the engine is not an OOM kill")
	assert.Equal(t, 137, ev.ExitCode)
	p, ok = e.drv.ooms.process(cid)
	require.True(t, ok)
	assert.False(t, kernelOOMKill(cid, p.pid, p.at.Add(-oomKillSkew), ev.Time.Add(oomKillSkew)))
}

// TestCreateOnlyLeavesContainerCreated checks create-only against the
// engine: the container exists, was never started, and has its limits.
func TestCreateOnlyLeavesContainerCreated(t *testing.T) {
	e := newEnv(t)
	_, err := e.drv.SpawnWithOptions(t.Context(), e.spec("co"), hypervisor.SpawnOptions{CreateOnly: true})
	require.NoError(t, err)
	c := e.inspect("co")
	assert.Equal(t, "created", string(c.State.Status))
	assert.Equal(t, int64(64<<20), c.HostConfig.Memory)
	rec, err := e.drv.state.load("co")
	require.NoError(t, err)
	assert.False(t, rec.Spawning, "the spawn mark is cleared")
	assert.Equal(t, intentCreated, rec.Intent)
}
