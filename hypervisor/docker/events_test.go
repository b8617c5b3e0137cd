package docker

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dockervisor/dockervisor/hypervisor"
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
	crash.Command = []string{"sh", "-c", "sleep 0.3; exit 7"}
	e.spawn(crash)
	require.NoError(t, e.drv.Destroy(ctx, "ev"))

	want := []hypervisor.EventType{
		hypervisor.EventStarted, hypervisor.EventPaused, hypervisor.EventUnpaused,
		hypervisor.EventStopped, hypervisor.EventStarted, hypervisor.EventStopped, hypervisor.EventDestroyed,
	}
	var got []hypervisor.EventType
	crashed := false
	timeout := time.After(30 * time.Second)
	for len(got) < len(want) || !crashed {
		select {
		case ev, ok := <-evc:
			require.True(t, ok, "stream ended early")
			switch ev.ID {
			case "ev":
				got = append(got, ev.Type)
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
	assert.Equal(t, want, got)

	cancel()
	for range evc {
	}
	_, ok := <-errc
	assert.False(t, ok, "no error after a cancel, and the channel is closed")
}
