package docker

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dockervisor/dockervisor/hypervisor"
)

var errInjected = errors.New("injected post-start failure")

// failPostStart adds a post-start step that runs fail, as the last step.
func (e *env) failPostStart(fail func(ctx context.Context) error) {
	e.drv.postStart = append(e.drv.postStart, postStartStep{name: "injected", run: func(ctx context.Context, s startedInstance) error {
		if s.PID <= 0 {
			return errors.New("post-start step without a PID")
		}
		return fail(ctx)
	}})
}

// A start whose post-start step fails leaves the instance stopped, and the
// driver's view and the engine's agreeing, for every transition that
// starts an instance. Restore keeps the soft-deleted mark.
func TestFailedStartLeavesDriverAndEngineAgreeing(t *testing.T) {
	type tc struct {
		name   string
		before func(e *env, id string)
		op     func(ctx context.Context, d *Driver, id string) error
		want   hypervisor.State
	}
	ctx := t.Context()
	powerOff := func(e *env, id string) {
		require.NoError(e.t, e.drv.PowerOff(ctx, id, hypervisor.StopOptions{Timeout: -1}))
	}
	softDelete := func(e *env, id string) { require.NoError(e.t, e.drv.SoftDelete(ctx, id)) }
	running := func(*env, string) {}
	cases := []tc{
		{"Restore", softDelete, func(ctx context.Context, d *Driver, id string) error { return d.Restore(ctx, id) }, hypervisor.StateSoftDeleted},
		{"PowerOn", powerOff, func(ctx context.Context, d *Driver, id string) error { return d.PowerOn(ctx, id) }, hypervisor.StateShutdown},
		{"RebootSoft", running, func(ctx context.Context, d *Driver, id string) error {
			return d.Reboot(ctx, id, hypervisor.RebootOptions{})
		}, hypervisor.StateShutdown},
		{"RebootHard", running, func(ctx context.Context, d *Driver, id string) error {
			return d.Reboot(ctx, id, hypervisor.RebootOptions{Hard: true})
		}, hypervisor.StateShutdown},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			e.spawn(e.spec("fs"))
			c.before(e, "fs")
			e.failPostStart(func(context.Context) error { return errInjected })

			err := c.op(t.Context(), e.drv, "fs")
			require.ErrorIs(t, err, errInjected)
			assert.Contains(t, err.Error(), "post-start step injected")
			info, err := e.drv.Info(t.Context(), "fs")
			require.NoError(t, err)
			assert.Equal(t, c.want, info.State, "the driver's view")
			assert.NotEqual(t, container.StateRunning, e.inspect("fs").State.Status, "the engine's view")

			// Without the failing step the same call works.
			e.drv.postStart = e.drv.postStart[:len(e.drv.postStart)-1]
			if c.want == hypervisor.StateShutdown {
				require.NoError(t, e.drv.PowerOn(t.Context(), "fs"))
			} else {
				require.NoError(t, c.op(t.Context(), e.drv, "fs"))
			}
			assert.Equal(t, hypervisor.StateRunning, e.state("fs"))
			assert.Equal(t, container.StateRunning, e.inspect("fs").State.Status)
		})
	}
}

// The caller's context ending right after the engine started the instance
// (the case seen in the field) leaves Restore's instance soft-deleted and
// stopped, not soft-deleted and running.
func TestRestoreCancelledAfterEngineStart(t *testing.T) {
	e := newEnv(t)
	e.spawn(e.spec("rc"))
	require.NoError(t, e.drv.SoftDelete(t.Context(), "rc"))
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	e.failPostStart(func(ctx context.Context) error {
		cancel()
		return ctx.Err()
	})
	require.ErrorIs(t, e.drv.Restore(ctx, "rc"), context.Canceled)
	assert.Equal(t, hypervisor.StateSoftDeleted, e.state("rc"))
	assert.NotEqual(t, container.StateRunning, e.inspect("rc").State.Status)
}

// A failed post-start step of Spawn rolls the whole spawn back.
func TestSpawnPostStartFailureRollsBack(t *testing.T) {
	e := newEnv(t)
	e.failPostStart(func(context.Context) error { return errInjected })
	_, err := e.drv.Spawn(t.Context(), e.spec("sp"))
	require.ErrorIs(t, err, errInjected)
	assert.Zero(t, e.containersNamed(e.drv.containerName("sp")))
	assert.NoFileExists(t, e.recordPath("sp"))
}

// A start that fails because the instance's process exited meanwhile
// (an init that gave up) says so: the exit code and the last lines of its
// console, and nothing is left of a failed Spawn.
func TestFailedStartSaysTheInstanceExited(t *testing.T) {
	e := newEnv(t)
	spec := e.spec("dies")
	spec.Command = []string{"sh", "-c", "echo first words; echo init giving up >&2; exit 3"}
	e.drv.postStart = append(e.drv.postStart, postStartStep{name: "injected", run: func(ctx context.Context, _ startedInstance) error {
		// Fail once the process has gone, as a step that needs the
		// instance's namespaces would.
		for {
			if st := e.inspect("dies").State; st != nil && !hasProcess(st.Status) {
				return errInjected
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(20 * time.Millisecond):
			}
		}
	}})
	_, err := e.drv.Spawn(t.Context(), spec)
	require.ErrorIs(t, err, errInjected)
	msg := err.Error()
	assert.Contains(t, msg, "exited during its start (exit code 3)")
	assert.Contains(t, msg, "first words")
	assert.Contains(t, msg, "init giving up")
	assert.Contains(t, msg, "post-start step injected")
	e.requireGone("dies")

	// A step failure while the process runs is reported as it was.
	e.drv.postStart = e.drv.postStart[:len(e.drv.postStart)-1]
	e.failPostStart(func(context.Context) error { return errInjected })
	_, err = e.drv.Spawn(t.Context(), e.spec("lives"))
	require.ErrorIs(t, err, errInjected)
	assert.NotContains(t, err.Error(), "exited")
	e.requireGone("lives")
}
