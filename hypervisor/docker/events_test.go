package docker

import (
	"context"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dockervisor/dockervisor/hypervisor"
	"github.com/dockervisor/dockervisor/hypervisor/hypervisortest"
)

func TestEvents(t *testing.T) {
	e := newEnv(t)
	other := newEnv(t) // its events must not show up
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	evc, errc := e.drv.Events(ctx)

	e.spawn(e.spec("ev"))
	other.spawn(other.spec("ev"))
	require.NoError(t, e.drv.Pause(ctx, "ev"))
	require.NoError(t, e.drv.Unpause(ctx, "ev"))
	require.NoError(t, e.drv.PowerOff(ctx, "ev", hypervisor.StopOptions{Timeout: -1})) // killed, still a stop
	require.NoError(t, e.drv.PowerOn(ctx, "ev"))
	crash := e.spec("evcrash")
	crash.Command = []string{"sh", "-c", "until [ -e /tmp/go ]; do sleep 0.05; done; exit 7"}
	e.spawn(crash)
	e.execOut("evcrash", "touch", "/tmp/go") // an exit inside Spawn would count as part of it
	require.NoError(t, e.drv.Destroy(ctx, "ev"))

	want := []hypervisor.EventType{
		hypervisor.EventStarted, hypervisor.EventPaused, hypervisor.EventUnpaused,
		hypervisor.EventStopped, hypervisor.EventStarted, hypervisor.EventStopped, hypervisor.EventDestroyed,
	}
	var got []hypervisor.Event
	crashed := false
	timeout := time.After(30 * time.Second)
	for len(got) == 0 || got[len(got)-1].Type != hypervisor.EventDestroyed || !crashed {
		select {
		case ev, ok := <-evc:
			require.True(t, ok, "stream ended early")
			switch ev.ID {
			case "ev":
				got = append(got, ev)
				assert.False(t, ev.Time.IsZero())
			case "evcrash":
				if ev.Type == hypervisor.EventCrashed {
					crashed = true
					assert.Equal(t, 7, ev.ExitCode)
				}
			default:
				t.Fatalf("event of a foreign instance: %+v", ev)
			}
		case err := <-errc:
			t.Fatalf("stream error: %v", err)
		case <-timeout:
			t.Fatalf("timed out; got %v, crashed=%v", got, crashed)
		}
	}
	var gotTypes []hypervisor.EventType
	for _, ev := range hypervisortest.WithoutPauseEchoes(got) {
		gotTypes = append(gotTypes, ev.Type)
	}
	assert.Equal(t, want, gotTypes)

	cancel()
	for range evc {
	}
	_, ok := <-errc
	assert.False(t, ok, "no error after a cancel, and the channel is closed")
}

// TestEventReasonsAcrossDrivers: a Driver's stream names the operations
// another Driver on the same state directory runs (another process in
// real use: a CLI runs one operation per process), and gives a kill or a
// stop through the engine, outside every Driver, as external.
func TestEventReasonsAcrossDrivers(t *testing.T) {
	e := newEnv(t)
	watcher := e.newDriver()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	evc, errc := watcher.Events(ctx)

	e.spawn(e.spec("x"))
	require.NoError(t, e.drv.PowerOff(ctx, "x", hypervisor.StopOptions{}))
	require.NoError(t, e.drv.PowerOn(ctx, "x"))
	name := e.drv.containerName("x")
	_, err := e.cli.ContainerKill(ctx, name, client.ContainerKillOptions{Signal: "KILL"})
	require.NoError(t, err)
	waitEngineState(t, e, name, "exited")
	_, err = e.cli.ContainerStart(ctx, name, client.ContainerStartOptions{})
	require.NoError(t, err)
	one := 1
	_, err = e.cli.ContainerStop(ctx, name, client.ContainerStopOptions{Timeout: &one})
	require.NoError(t, err)
	require.NoError(t, e.drv.Destroy(ctx, "x"))

	type seen struct {
		typ    hypervisor.EventType
		reason hypervisor.EventReason
		op     string
		exit   int
	}
	want := []seen{
		{hypervisor.EventStarted, hypervisor.ReasonRequested, "spawn", 0},
		{hypervisor.EventStopped, hypervisor.ReasonRequested, "power-off", 0},
		{hypervisor.EventStarted, hypervisor.ReasonRequested, "power-on", 0},
		{hypervisor.EventCrashed, hypervisor.ReasonExternal, "", 137}, // docker kill
		{hypervisor.EventStarted, hypervisor.ReasonExternal, "", 0},   // docker start
		{hypervisor.EventStopped, hypervisor.ReasonExternal, "", 0},   // docker stop: the guest exits 0 on SIGTERM
		{hypervisor.EventDestroyed, hypervisor.ReasonRequested, "destroy", 0},
	}
	var got []seen
	timeout := time.After(30 * time.Second)
	for len(got) < len(want) {
		select {
		case ev, ok := <-evc:
			require.True(t, ok, "stream ended early")
			if ev.ID == "x" {
				got = append(got, seen{ev.Type, ev.Reason, ev.Operation, ev.ExitCode})
			}
		case err := <-errc:
			t.Fatalf("stream error: %v", err)
		case <-timeout:
			t.Fatalf("timed out; got %+v", got)
		}
	}
	assert.Equal(t, want, got)
}

// waitEngineState waits until the engine says container name is in state.
func waitEngineState(t *testing.T, e *env, name string, state container.ContainerState) {
	t.Helper()
	require.Eventually(t, func() bool {
		c, err := e.cli.ContainerInspect(t.Context(), name, client.ContainerInspectOptions{})
		return err == nil && c.Container.State != nil && c.Container.State.Status == state
	}, 30*time.Second, 20*time.Millisecond)
}
