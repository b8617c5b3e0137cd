package placement_test

import (
	"context"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dockervisor/dockervisor/hypervisor/hypervisortest"
	"github.com/dockervisor/dockervisor/internal/testenv"
	"github.com/dockervisor/dockervisor/placement"
)

// wire counts what a Placement client sends: the connections it opens
// and the allocation-candidates requests.
type wire struct {
	dials, candidateGets atomic.Int64
	rt                   http.RoundTripper
}

func (w *wire) RoundTrip(req *http.Request) (*http.Response, error) {
	if strings.HasSuffix(req.URL.Path, "/allocation_candidates") {
		w.candidateGets.Add(1)
	}
	return w.rt.RoundTrip(req)
}

// newCountedClient returns a noauth client of the shared Placement whose
// connections and candidate requests are counted.
func newCountedClient(t *testing.T) (*gophercloud.ServiceClient, *wire) {
	t.Helper()
	_, ep := newClient(t)
	c, err := placement.NewNoAuthClient(ep, testenv.PlacementToken)
	require.NoError(t, err)
	tr, ok := c.ProviderClient.HTTPClient.Transport.(*http.Transport)
	require.True(t, ok, "the client's own transport")
	tr = tr.Clone()
	w := &wire{rt: tr}
	var d net.Dialer
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		w.dials.Add(1)
		return d.DialContext(ctx, network, addr)
	}
	c.ProviderClient.HTTPClient.Transport = w
	t.Cleanup(tr.CloseIdleConnections)
	return c, w
}

// TestSchedulerCandidateLimit asks for fewer candidates than there are
// providers: the Scheduler gets at most the limit, all of them without
// one, and a Scheduler whose one target is not among a limited answer
// still finds it.
func TestSchedulerCandidateLimit(t *testing.T) {
	t.Parallel()
	c, w := newCountedClient(t)
	trait := placement.CustomTrait(testenv.UniqueName("limit"))
	rps := newBareProviders(t, c, 6, trait, 8)
	cl, err := placement.NewClaimer(c, placement.Owner{})
	require.NoError(t, err)
	req := placement.Request{Resources: placement.Resources{placement.VCPU: 1}, Required: []string{trait}}
	ctx := t.Context()

	for limit, want := range map[int]int{2: 2, 0: 6, placement.DefaultCandidateLimit: 6} {
		s, err := placement.NewScheduler(cl, nil, placement.WithCandidateLimit(limit))
		require.NoError(t, err)
		cands, err := s.Candidates(ctx, req)
		require.NoError(t, err)
		assert.Len(t, cands, want, "limit %d", limit)
	}
	def, err := placement.NewScheduler(cl, nil)
	require.NoError(t, err)
	cands, err := def.Candidates(ctx, req)
	require.NoError(t, err)
	assert.Len(t, cands, 6, "the default limit is above 6")

	// One target, one candidate per answer: the target is found every
	// time, with a second request for all candidates when the first
	// answer did not hold it.
	target := placement.Target{ProviderUUID: rps[4], Name: "only", Driver: hypervisortest.NewFake()}
	s, err := placement.NewScheduler(cl, []placement.Target{target}, placement.WithCandidateLimit(1))
	require.NoError(t, err)
	before := w.candidateGets.Load()
	for range 8 {
		cands, err := s.Candidates(ctx, req)
		require.NoError(t, err)
		require.Len(t, cands, 1)
		assert.Equal(t, rps[4], cands[0].ProviderUUID)
	}
	gets := w.candidateGets.Load() - before
	assert.GreaterOrEqual(t, gets, int64(8))
	assert.LessOrEqual(t, gets, int64(16))

	_, err = placement.NewScheduler(cl, nil, placement.WithCandidateLimit(-1))
	require.ErrorIs(t, err, placement.ErrInvalidArgument)
	_, err = placement.NewScheduler(cl, nil, placement.WithClaimSettle(-time.Second))
	require.ErrorIs(t, err, placement.ErrInvalidArgument)
}

// TestSchedulerTriesNextCandidateOnConflict takes the capacity of the
// best candidate away between the Scheduler's request for candidates and
// its claim (from the weigher, as a concurrent scheduler would): the
// claim conflicts and the next candidate of the same answer is claimed,
// without asking Placement again.
func TestSchedulerTriesNextCandidateOnConflict(t *testing.T) {
	t.Parallel()
	c, w := newCountedClient(t)
	trait := placement.CustomTrait(testenv.UniqueName("next"))
	rps := newBareProviders(t, c, 2, trait, 2)
	best, next := rps[0], rps[1]
	cl, err := placement.NewClaimer(c, placement.Owner{})
	require.NoError(t, err)
	ctx := t.Context()
	var (
		once    sync.Once
		fillErr error
	)
	weigher := placement.WeigherFunc(func(_ placement.Request, cand placement.Candidate) float64 {
		once.Do(func() {
			fillErr = cl.Claim(ctx, placement.NewUUID(), map[string]placement.Resources{best: {placement.VCPU: 2}})
		})
		if cand.ProviderUUID == best {
			return 1
		}
		return 0
	})
	s, err := placement.NewScheduler(cl, nil, placement.WithWeigher(weigher))
	require.NoError(t, err)
	req := placement.Request{Resources: placement.Resources{placement.VCPU: 1}, Required: []string{trait}}
	d, err := s.Select(ctx, placement.NewUUID(), req)
	require.NoError(t, err)
	require.NoError(t, fillErr)
	assert.Equal(t, next, d.ProviderUUID)
	assert.Equal(t, 2, d.Attempts)
	assert.Equal(t, 1, d.Conflicts)
	assert.Equal(t, int64(1), w.candidateGets.Load(), "one answer served both claims")
	decisions, conflicts := s.Stats()
	assert.Equal(t, int64(2), decisions)
	assert.Equal(t, int64(1), conflicts)
}

// TestSchedulerReusesConnections makes decisions with four schedulers at
// once and then with one, all on one client: no request after the first
// ones opens a connection (the HTTP router in front of Placement keeps
// them alive).
func TestSchedulerReusesConnections(t *testing.T) {
	t.Parallel()
	c, w := newCountedClient(t)
	trait := placement.CustomTrait(testenv.UniqueName("conns"))
	newBareProviders(t, c, 3, trait, 64)
	cl, err := placement.NewClaimer(c, placement.Owner{})
	require.NoError(t, err)
	req := placement.Request{Resources: placement.Resources{placement.VCPU: 1}, Required: []string{trait}}
	const schedulers, each = 4, 5
	var wg sync.WaitGroup
	errs := make(chan error, schedulers*each)
	for range schedulers {
		s, err := placement.NewScheduler(cl, nil, placement.WithWeigher(placement.Pack))
		require.NoError(t, err)
		wg.Go(func() {
			for range each {
				_, err := s.Select(t.Context(), placement.NewUUID(), req)
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	s, err := placement.NewScheduler(cl, nil)
	require.NoError(t, err)
	for range 10 {
		_, err := s.Select(t.Context(), placement.NewUUID(), req)
		require.NoError(t, err)
	}
	assert.LessOrEqual(t, w.dials.Load(), int64(schedulers), "connections opened for %d decisions", schedulers*each+10)
	assert.GreaterOrEqual(t, w.candidateGets.Load(), int64(schedulers*each+10))
}
