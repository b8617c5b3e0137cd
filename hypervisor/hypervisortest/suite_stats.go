package hypervisortest

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dockervisor/dockervisor/errclass"
	"github.com/dockervisor/dockervisor/hypervisor"
)

// testStatsDuringReboot samples an instance while another goroutine
// hard-reboots it in a loop. InstanceStats is valid in every state, so each
// sample either succeeds or fails with an *OpError that wraps exactly one
// class; an ErrInvalidState must carry its *StateError, as every one does.
func testStatsDuringReboot(t *testing.T, e *env) {
	if !e.caps.InstanceStats || !e.caps.Reboot {
		t.Skip("the driver does not sample instances or reboot them")
	}
	spec := e.spec("statsreboot")
	e.spawn(t, spec)
	e.waitState(t, spec.ID, hypervisor.StateRunning)

	ctx, stopReboots := context.WithCancel(t.Context())
	defer stopReboots()
	var wg sync.WaitGroup
	reboots := 0
	wg.Go(func() {
		for ctx.Err() == nil {
			err := e.d.Reboot(ctx, spec.ID, hypervisor.RebootOptions{Hard: true})
			if err != nil && ctx.Err() == nil {
				t.Errorf("Reboot(%q, hard): %v", spec.ID, err)
				return
			}
			if err == nil {
				reboots++
			}
		}
	})
	// At least three samples, and samples for three seconds (a tenth of
	// that under -short); each runs to its end (the reboots stop only
	// afterwards).
	ok, failed := 0, 0
	window := 3 * time.Second
	if testing.Short() {
		window /= 10
	}
	deadline := time.Now().Add(window)
	for i := 0; i < 3 || time.Now().Before(deadline); i++ {
		s, err := e.d.InstanceStats(t.Context(), spec.ID)
		if err == nil {
			ok++
			assert.Equal(t, spec.ID, s.ID)
			continue
		}
		failed++
		t.Logf("sample during reboots: %v", err)
		requireOpError(t, err, spec.ID, "InstanceStats during reboots")
		assert.Len(t, errclass.Matching(err), 1, "InstanceStats error %q wraps one class", err)
		if errors.Is(err, hypervisor.ErrInvalidState) {
			_, ok := errors.AsType[*hypervisor.StateError](err)
			assert.True(t, ok, "ErrInvalidState without *StateError: %v", err)
		}
	}
	stopReboots()
	wg.Wait()
	t.Logf("%d samples, %d failed, %d hard reboots", ok+failed, failed, reboots)
	require.Positive(t, reboots, "the instance was rebooted")
	assert.Positive(t, ok, "some samples succeeded")
	// Sampling still works once the instance is left alone.
	_, err := e.d.InstanceStats(t.Context(), spec.ID)
	require.NoError(t, err)
}
