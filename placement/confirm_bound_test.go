package placement

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dockervisor/dockervisor/hypervisor"
	"github.com/dockervisor/dockervisor/hypervisor/hypervisortest"
)

// TestConfirmIsBounded runs confirm against a Placement that never
// answers, for a claim whose round trip took an hour: the wait before the
// first read stops at maxRTTSettle and the reads at confirmTimeout (both
// shortened here), and the instance stays as placed. Unbounded, confirm
// would wait three hours.
func TestConfirmIsBounded(t *testing.T) {
	oldSettle, oldTimeout := maxRTTSettle, confirmTimeout
	maxRTTSettle, confirmTimeout = 100*time.Millisecond, 300*time.Millisecond
	t.Cleanup(func() { maxRTTSettle, confirmTimeout = oldSettle, oldTimeout })

	reads := make(chan struct{}, 16)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reads <- struct{}{}
		<-r.Context().Done() // never answers
	}))
	t.Cleanup(srv.Close)
	c, err := NewNoAuthClient(srv.URL, "admin")
	require.NoError(t, err)
	cl, err := NewClaimer(c, Owner{})
	require.NoError(t, err)
	fake := hypervisortest.NewFake(hypervisortest.WithImages("busybox"))
	id := NewUUID()
	_, err = fake.Spawn(t.Context(), hypervisor.InstanceSpec{ID: id, Image: "busybox", Command: []string{"sleep", "1"}, VCPUs: 1, MemoryMB: 16})
	require.NoError(t, err)
	provider := NewUUID()
	tgt := Target{ProviderUUID: provider, Name: "host", Driver: fake}
	s, err := NewScheduler(cl, []Target{tgt})
	require.NoError(t, err)

	done := make(chan error, 1)
	start := time.Now()
	go func() {
		done <- s.confirm(t.Context(), tgt, provider, id, claimed{at: start, rtt: time.Hour})
	}()
	select {
	case err = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("confirm did not end within 30 s")
	}
	elapsed := time.Since(start)
	require.NoError(t, err, "the instance stays as placed")
	assert.GreaterOrEqual(t, elapsed, maxRTTSettle+confirmTimeout, "waited, then read until the timeout")
	assert.NotEmpty(t, reads, "it read")
	_, err = fake.Info(context.WithoutCancel(t.Context()), id)
	assert.NoError(t, err, "the instance is kept")
}
