package placement

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dockervisor/dockervisor/hypervisor"
)

// Request is what an instance needs from a provider.
type Request struct {
	// Resources are the amounts by resource class. Required.
	Resources Resources
	// Required are traits the provider must have.
	Required []string
	// Forbidden are traits the provider must not have; TraitDisabled is
	// always forbidden.
	Forbidden []string
}

// query builds the allocation-candidates query of r, asking for at most
// limit candidates (0: all).
func (r Request) query(limit int) (url.Values, error) {
	if len(r.Resources) == 0 {
		return nil, fmt.Errorf("%w: request without resources", ErrInvalidArgument)
	}
	parts := make([]string, 0, len(r.Resources))
	for _, class := range slices.Sorted(maps.Keys(r.Resources)) {
		n := r.Resources[class]
		if n <= 0 || !validTrait(class) {
			return nil, fmt.Errorf("%w: resource %s:%d", ErrInvalidArgument, class, n)
		}
		parts = append(parts, fmt.Sprintf("%s:%d", class, n))
	}
	traits := make([]string, 0, len(r.Required)+len(r.Forbidden)+1)
	for _, t := range r.Required {
		if !validTrait(t) {
			return nil, fmt.Errorf("%w: trait %q", ErrInvalidArgument, t)
		}
		traits = append(traits, t)
	}
	for _, t := range append([]string{TraitDisabled}, r.Forbidden...) {
		if !validTrait(t) {
			return nil, fmt.Errorf("%w: trait %q", ErrInvalidArgument, t)
		}
		traits = append(traits, "!"+t)
	}
	q := url.Values{"resources": {strings.Join(parts, ",")}, "required": {strings.Join(traits, ",")}}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	return q, nil
}

// Usage is a provider's capacity and use of one resource class, as
// Placement's candidate summary reports it (capacity is (total -
// reserved) * allocation ratio).
type Usage struct {
	Capacity int `json:"capacity"`
	Used     int `json:"used"`
}

// Candidate is one allocation candidate: a single provider that can hold
// the request.
type Candidate struct {
	ProviderUUID string
	// Allocation is the allocation request to claim, by provider.
	Allocation map[string]Resources
	// Usage is the provider's capacity and use by resource class.
	Usage map[string]Usage
	// Traits are the provider's traits.
	Traits []string
}

// Weigher scores candidates; the Scheduler claims the highest score
// first. Weigh must be safe for concurrent use.
type Weigher interface {
	Weigh(req Request, c Candidate) float64
}

// WeigherFunc adapts a function to a Weigher.
type WeigherFunc func(Request, Candidate) float64

// Weigh calls f.
func (f WeigherFunc) Weigh(req Request, c Candidate) float64 { return f(req, c) }

// freeFraction is the mean, over the requested classes, of the fraction
// of capacity that stays free after the request.
func freeFraction(req Request, c Candidate) float64 {
	var sum float64
	var n int
	for class, amount := range req.Resources {
		u, ok := c.Usage[class]
		if !ok || u.Capacity <= 0 {
			continue
		}
		sum += float64(u.Capacity-u.Used-amount) / float64(u.Capacity)
		n++
	}
	if n == 0 {
		return 0
	}
	return sum / float64(n)
}

var (
	// Spread prefers the provider with the most free capacity (Nova's
	// default weighing): instances spread over hosts.
	Spread Weigher = WeigherFunc(func(req Request, c Candidate) float64 { return freeFraction(req, c) })
	// Pack prefers the provider with the least free capacity: instances
	// fill one host before the next.
	Pack Weigher = WeigherFunc(func(req Request, c Candidate) float64 { return -freeFraction(req, c) })
)

// Target is a host the Scheduler can spawn on: its provider and its
// driver.
type Target struct {
	ProviderUUID string
	Name         string
	Driver       hypervisor.Lifecycle
}

// HostDown is a host taken out of scheduling because its engine stopped
// answering: its provider was disabled, and Instances are the consumers
// still holding allocations on it (the instances it had).
type HostDown struct {
	Target    Target
	Cause     error
	Instances []string
}

type schedulerOptions struct {
	weigher     Weigher
	maxAttempts int
	limit       int
	onDown      func(HostDown)
	claimSettle time.Duration
}

// SchedulerOption configures a Scheduler.
type SchedulerOption func(*schedulerOptions) error

// WithWeigher sets how candidates are ranked (default Spread).
func WithWeigher(w Weigher) SchedulerOption {
	return func(o *schedulerOptions) error {
		if w == nil {
			return fmt.Errorf("%w: nil weigher", ErrInvalidArgument)
		}
		o.weigher = w
		return nil
	}
}

// WithMaxAttempts bounds the claims (and spawns) tried for one instance
// (default 10). Each conflict or failed spawn costs one.
func WithMaxAttempts(n int) SchedulerOption {
	return func(o *schedulerOptions) error {
		if n < 1 {
			return fmt.Errorf("%w: max attempts %d", ErrInvalidArgument, n)
		}
		o.maxAttempts = n
		return nil
	}
}

// WithClaimSettle sets the least time Place lets pass after a successful
// claim before it reads the claim back (see Place); by default it waits
// racingClaimRTTs of the claim's own round trips, which on a quiet
// Placement the spawn has already taken. A Placement whose answers can
// stall for longer than that (behind a slow proxy, say) wants more.
// Sweep's least age must then exceed it too (see DefaultSweepAge).
func WithClaimSettle(d time.Duration) SchedulerOption {
	return func(o *schedulerOptions) error {
		if d < 0 {
			return fmt.Errorf("%w: claim settle %v", ErrInvalidArgument, d)
		}
		o.claimSettle = d
		return nil
	}
}

// DefaultCandidateLimit is how many allocation candidates a Scheduler
// asks Placement for at a time unless WithCandidateLimit says otherwise.
const DefaultCandidateLimit = 50

// WithCandidateLimit asks Placement for at most n allocation candidates
// per decision (Placement's limit parameter, the idea of Nova's
// max_placement_results); the Scheduler weighs those. n = 0 asks for all
// of them. The default is DefaultCandidateLimit.
//
// Placement finds every candidate whatever the limit, but it and the
// Scheduler spend time on each one they encode and decode: at 1,000
// providers an answer without a limit is about 400 KB. Which candidates
// come back is Placement's choice: a random sample when it runs with
// [placement] randomize_allocation_candidates = true, otherwise the
// first n in an order of its own, the same for every scheduler. With
// fewer candidates than hosts, Spread and Pack therefore rank a sample,
// not every host; turn randomize_allocation_candidates on (as Nova
// recommends for max_placement_results) so that work spreads over all
// hosts. When the candidates of an answer that was cut at the limit are
// all unusable (none of the Scheduler's targets, or hosts it took down),
// the Scheduler asks again for all of them.
func WithCandidateLimit(n int) SchedulerOption {
	return func(o *schedulerOptions) error {
		if n < 0 {
			return fmt.Errorf("%w: candidate limit %d", ErrInvalidArgument, n)
		}
		o.limit = n
		return nil
	}
}

// WithHostDownHook calls f when the Scheduler takes a host out (after
// its provider was disabled).
func WithHostDownHook(f func(HostDown)) SchedulerOption {
	return func(o *schedulerOptions) error {
		o.onDown = f
		return nil
	}
}

// Scheduler places instances on the providers Placement offers: it asks
// for allocation candidates, ranks them with a Weigher, claims the best,
// and (Place) spawns on the chosen host. Several Schedulers, in one
// process or many, can work on the same Placement: a claim that lost a
// race is retried with fresh candidates, and an instance is never placed
// twice because its claim is made as a new consumer. It is safe for
// concurrent use.
type Scheduler struct {
	claimer *Claimer
	targets map[string]Target
	opts    schedulerOptions

	decisions, conflicts atomic.Int64

	mu   sync.Mutex
	down map[string]HostDown
}

// NewScheduler returns a Scheduler that claims through claimer and
// spawns on targets (by provider UUID). With no targets it can Select
// (claim) but not Place; with targets it only considers their providers.
func NewScheduler(claimer *Claimer, targets []Target, opts ...SchedulerOption) (*Scheduler, error) {
	if claimer == nil {
		return nil, fmt.Errorf("%w: nil claimer", ErrInvalidArgument)
	}
	o := schedulerOptions{weigher: Spread, maxAttempts: 10, limit: DefaultCandidateLimit}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	s := &Scheduler{claimer: claimer, targets: map[string]Target{}, opts: o, down: map[string]HostDown{}}
	for _, t := range targets {
		if !ValidUUID(t.ProviderUUID) || t.Driver == nil {
			return nil, fmt.Errorf("%w: target %q needs a provider UUID and a driver", ErrInvalidArgument, t.Name)
		}
		s.targets[t.ProviderUUID] = t
	}
	return s, nil
}

// Candidates asks Placement for the providers that can hold req (never
// disabled ones; at most the candidate limit of them, see
// WithCandidateLimit), restricted to the Scheduler's targets if it has
// any, and returns them best first by its weigher. Candidates of equal
// weight come in random order, so that concurrent schedulers do not all
// claim the same one.
func (s *Scheduler) Candidates(ctx context.Context, req Request) ([]Candidate, error) {
	return s.candidates(ctx, req, nil)
}

// candidates returns the ranked candidates that usable accepts (all
// when it is nil). When an answer cut at the limit leaves none, it asks
// again for every candidate.
func (s *Scheduler) candidates(ctx context.Context, req Request, usable func(Candidate) bool) ([]Candidate, error) {
	cands, cut, err := s.fetch(ctx, req, s.opts.limit, usable)
	if err == nil && len(cands) == 0 && cut {
		cands, _, err = s.fetch(ctx, req, 0, usable)
	}
	if err != nil {
		return nil, err
	}
	type weighed struct {
		c Candidate
		w float64
	}
	ws := make([]weighed, len(cands))
	for i, c := range cands {
		ws[i] = weighed{c, s.opts.weigher.Weigh(req, c)}
	}
	// Shuffle, then sort stably: equal weights stay in random order.
	rand.Shuffle(len(ws), func(i, j int) { ws[i], ws[j] = ws[j], ws[i] })
	slices.SortStableFunc(ws, func(a, b weighed) int { return cmp.Compare(b.w, a.w) })
	for i := range ws {
		cands[i] = ws[i].c
	}
	return cands, nil
}

// candidatesAnswer is the part of Placement's allocation-candidates
// answer that the Scheduler uses; the rest of it is skipped while it is
// decoded from the response body.
type candidatesAnswer struct {
	AllocationRequests []struct {
		Allocations map[string]struct {
			Resources Resources `json:"resources"`
		} `json:"allocations"`
	} `json:"allocation_requests"`
	ProviderSummaries map[string]struct {
		Resources map[string]Usage `json:"resources"`
		Traits    []string         `json:"traits"`
	} `json:"provider_summaries"`
}

// fetch asks Placement for at most limit candidates (0: all) and returns
// the single-provider ones of the Scheduler's targets that usable
// accepts, unranked, and whether the answer may have been cut at the
// limit.
func (s *Scheduler) fetch(ctx context.Context, req Request, limit int, usable func(Candidate) bool) ([]Candidate, bool, error) {
	q, err := req.query(limit)
	if err != nil {
		return nil, false, err
	}
	c := s.claimer.client
	var ans candidatesAnswer
	if _, err := c.Get(ctx, c.ServiceURL("allocation_candidates")+"?"+q.Encode(), &ans, nil); err != nil {
		return nil, false, classify("allocation candidates", err)
	}
	out := make([]Candidate, 0, len(ans.AllocationRequests))
	for _, ar := range ans.AllocationRequests {
		if len(ar.Allocations) != 1 {
			continue // a single-host request only spans one provider
		}
		cand := Candidate{Allocation: make(map[string]Resources, 1)}
		for rp, a := range ar.Allocations {
			cand.ProviderUUID = rp
			cand.Allocation[rp] = a.Resources
		}
		if len(s.targets) > 0 {
			if _, ok := s.targets[cand.ProviderUUID]; !ok {
				continue
			}
		}
		if sum, ok := ans.ProviderSummaries[cand.ProviderUUID]; ok {
			cand.Usage, cand.Traits = sum.Resources, sum.Traits
		}
		if usable != nil && !usable(cand) {
			continue
		}
		out = append(out, cand)
	}
	return out, limit > 0 && len(ans.AllocationRequests) >= limit, nil
}

// Decision is where an instance was claimed.
type Decision struct {
	ID           string
	ProviderUUID string
	Host         string // the target's name, when known
	// Attempts counts the claims tried; Conflicts those that lost a race.
	Attempts, Conflicts int
}

// Select claims req for consumer id on the best candidate. A claim that
// meets a conflict (another scheduler took the capacity) is retried with
// fresh candidates, up to the attempt limit. It returns ErrAlreadyClaimed
// if id is claimed already, ErrNoCandidates if no provider fits, and
// ErrConflict when every attempt lost a race.
func (s *Scheduler) Select(ctx context.Context, id string, req Request) (Decision, error) {
	d, _, err := s.selectExcept(ctx, id, req, nil, s.opts.maxAttempts)
	return d, err
}

// claimed is a successful claim: its allocation, when Placement answered
// it and how long the request took.
type claimed struct {
	alloc map[string]Resources
	at    time.Time
	rtt   time.Duration
}

// selectExcept is Select without the providers in exclude, in at most
// attempts claims. It returns the claim it made, too.
func (s *Scheduler) selectExcept(ctx context.Context, id string, req Request, exclude map[string]bool, attempts int) (Decision, claimed, error) {
	d := Decision{ID: id}
	usable := func(c Candidate) bool { return !exclude[c.ProviderUUID] && !s.isDown(c.ProviderUUID) }
	for d.Attempts < attempts {
		cands, err := s.candidates(ctx, req, usable)
		if err != nil {
			return d, claimed{}, err
		}
		if len(cands) == 0 {
			// The capacity may be gone because this very consumer holds
			// it: another scheduler placed it.
			if held, err := s.claimer.Allocations(ctx, id); err == nil && len(held) > 0 {
				return d, claimed{}, fmt.Errorf("%w: %s", ErrAlreadyClaimed, id)
			}
			return d, claimed{}, fmt.Errorf("%w: for %s (%v)", ErrNoCandidates, id, req.Resources)
		}
		// Best first; a claim that lost a race moves on to the next
		// candidate of the same answer (as Nova's alternates), and only
		// when they are used up are fresh candidates asked for.
		for _, c := range cands {
			if d.Attempts >= attempts {
				break
			}
			d.Attempts++
			s.decisions.Add(1)
			sent := time.Now()
			err = s.claimer.Claim(ctx, id, c.Allocation)
			if err == nil {
				d.ProviderUUID = c.ProviderUUID
				d.Host = s.targets[c.ProviderUUID].Name
				at := time.Now()
				return d, claimed{alloc: c.Allocation, at: at, rtt: at.Sub(sent)}, nil
			}
			if !errors.Is(err, ErrConflict) {
				return d, claimed{}, err
			}
			d.Conflicts++
			s.conflicts.Add(1)
		}
	}
	return d, claimed{}, fmt.Errorf("%w: %s: %d claims lost to concurrent schedulers", ErrConflict, id, d.Conflicts)
}

// Place selects a host for spec (spec.ID is the consumer), claims it and
// spawns there. When the spawn fails the claim is released; when it
// failed because the engine did not answer (hypervisor.ErrUnavailable),
// the host is taken down (its provider disabled, see HostDown) and the
// instance is placed elsewhere. Other spawn errors are returned.
// After the spawn, and once the claim is old enough that a concurrent
// claim of the same consumer has landed (see confirm), it checks that the
// claim is still this Scheduler's:
// one that another scheduler's concurrent claim replaced gives way (its
// instance destroyed, ErrAlreadyClaimed); a consumer left with no
// allocations at all (Placement's race for a new consumer can hide
// them) is claimed again, and the instance is kept if that claim holds,
// destroyed otherwise (ErrAlreadyClaimed, or ErrConflict when the
// capacity is gone). A replacing claim that Placement answers only after
// that check can still leave the instance on two hosts: a periodic Sweep
// settles such instances.
func (s *Scheduler) Place(ctx context.Context, spec hypervisor.InstanceSpec, req Request) (Decision, error) {
	if err := spec.Validate(); err != nil {
		return Decision{ID: spec.ID}, err
	}
	done := s.claimer.begin(spec.ID)
	defer done()
	exclude := map[string]bool{}
	var total Decision
	for total.Attempts < s.opts.maxAttempts {
		d, cl, err := s.selectExcept(ctx, spec.ID, req, exclude, s.opts.maxAttempts-total.Attempts)
		total.ID, total.ProviderUUID, total.Host = d.ID, d.ProviderUUID, d.Host
		total.Attempts += d.Attempts
		total.Conflicts += d.Conflicts
		if err != nil {
			return total, err
		}
		t, ok := s.targets[d.ProviderUUID]
		if !ok {
			_ = s.claimer.Release(context.WithoutCancel(ctx), spec.ID)
			return total, fmt.Errorf("%w: provider %s is not a target of this scheduler", ErrInvalidArgument, d.ProviderUUID)
		}
		_, err = spawnOnClaim(ctx, s.claimer, t.Driver, spec)
		if err == nil {
			return total, s.confirm(ctx, t, d.ProviderUUID, spec.ID, cl)
		}
		if errors.Is(err, hypervisor.ErrAlreadyExists) {
			// Another scheduler's concurrent claim of the same consumer
			// on the same host won the spawn (see confirm).
			return total, fmt.Errorf("%w: %s: %w", ErrAlreadyClaimed, spec.ID, err)
		}
		if !errors.Is(err, hypervisor.ErrUnavailable) {
			return total, err
		}
		exclude[d.ProviderUUID] = true
		if derr := s.TakeDown(ctx, d.ProviderUUID, err); derr != nil {
			return total, errors.Join(err, derr)
		}
	}
	return total, fmt.Errorf("%w: %s: no host took it in %d attempts", ErrNoCandidates, spec.ID, total.Attempts)
}

// racingClaimRTTs is how many of a claim's own round trips confirm lets
// pass after Placement answered it before it reads the claim back. A
// concurrent claim of the same new consumer that Placement lets succeed
// too was sent before this claim was committed, so it lands within one
// round trip of its own after that answer; three allow for its being
// slower than this one. On a quiet Placement the spawn takes longer.
const racingClaimRTTs = 3

// maxRTTSettle bounds the wait racingClaimRTTs sets (a claim whose
// answer took minutes says little about the next one); WithClaimSettle
// can set a longer one. confirmTimeout bounds confirm's reads and claims
// after its wait: past it, the instance stays as placed (see Sweep and
// DefaultSweepAge). Variables only so that a test can shorten them.
var (
	maxRTTSettle   = 3 * time.Minute
	confirmTimeout = 2 * time.Minute
)

// confirmRounds bounds how often confirm claims a consumer again whose
// allocations vanished.
const confirmRounds = 3

// confirmSettle is how long confirm waits after claiming a consumer again
// before it reads the allocations back, so that a claim of the same
// consumer that raced it has landed: about a spawn on a loaded host, the
// time the first claim's check gives such a claim.
const confirmSettle = time.Second

// confirm checks, after the spawn, that the claim on provider is still
// consumer id's. Placement can let two concurrent claims of one new
// consumer both succeed, the later one replacing the earlier's
// allocations (its ensure_consumer adopts a consumer that a racing
// request created), and the request that loses such a race deletes the
// consumer it created, which hides the winner's allocations (a read
// finds none). The first read waits until the claim is racingClaimRTTs
// of its round trips old (at most maxRTTSettle), or the WithClaimSettle
// time if longer, so that a concurrent claim has landed: one landing
// after the read would leave the instance running here and where the
// other scheduler spawned it. Then:
//   - allocations on provider: the instance stays;
//   - allocations elsewhere only: another scheduler's claim replaced this
//     one; the instance spawned here is destroyed and confirm reports
//     ErrAlreadyClaimed, so that the instance runs where its
//     allocations are;
//   - none at all: the consumer is claimed again with cl's allocation (which also
//     replaces allocations a deleted consumer left behind) and read back
//     after confirmSettle, so that of two schedulers that both find none,
//     one keeps its instance and the other gives way. An instance whose
//     claim cannot be made again (the capacity went meanwhile) is
//     destroyed, with ErrConflict.
//
// An error reading the allocations, or one claiming again that is not a
// conflict, leaves the instance as placed, as does running past
// confirmTimeout: should it run on another host too, Sweep settles that
// later.
func (s *Scheduler) confirm(ctx context.Context, t Target, provider, id string, cl claimed) error {
	giveWay := func(why string, cause error) error {
		err := fmt.Errorf("%w: %s: %s; the instance spawned here was destroyed", ErrAlreadyClaimed, id, why)
		if errors.Is(cause, ErrConflict) {
			err = fmt.Errorf("%w: %s: %s (%w); the instance spawned here was destroyed", ErrConflict, id, why, cause)
		}
		if derr := t.Driver.Destroy(context.WithoutCancel(ctx), id); derr != nil {
			return fmt.Errorf("%w, but destroying it failed: %w", err, derr)
		}
		return err
	}
	// A concurrent claim that replaces this one can land after the spawn:
	// reading before it has would keep the instance here while the other
	// scheduler keeps its own.
	settle := max(min(racingClaimRTTs*cl.rtt, maxRTTSettle), s.opts.claimSettle)
	if !sleepCtx(ctx, time.Until(cl.at.Add(settle))) {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, confirmTimeout)
	defer cancel()
	var lastClaim error
	for round := 0; ; round++ {
		held, err := s.claimer.Allocations(ctx, id)
		if err != nil {
			return nil
		}
		if _, ok := held[provider]; ok {
			return nil
		}
		if len(held) > 0 {
			return giveWay("another scheduler's claim replaced this one after the spawn", nil)
		}
		if round == confirmRounds {
			return giveWay("its claim vanished after the spawn and could not be made again", lastClaim)
		}
		lastClaim = s.claimer.Claim(ctx, id, cl.alloc)
		switch {
		case lastClaim == nil:
		case errors.Is(lastClaim, ErrAlreadyClaimed), errors.Is(lastClaim, ErrConflict):
			// Another claim of id landed first, or the capacity is
			// gone: the next read tells which.
		default:
			return nil
		}
		if !sleepCtx(ctx, confirmSettle) {
			return nil
		}
	}
}

// sleepCtx waits d (nothing when d ≤ 0) and reports whether ctx is still
// live.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-timer.C:
		return true
	}
}

// TakeDown disables a host's provider because of cause (its engine does
// not answer), so that no scheduler picks it, and records the consumers
// still allocated there. It is idempotent; the hook runs once per host.
func (s *Scheduler) TakeDown(ctx context.Context, provider string, cause error) error {
	s.mu.Lock()
	_, already := s.down[provider]
	s.mu.Unlock()
	if already {
		return nil
	}
	if err := SetProviderDisabled(ctx, s.claimer.client, provider, true); err != nil {
		return err
	}
	held, err := ProviderAllocations(ctx, s.claimer.client, provider)
	if err != nil {
		return err
	}
	hd := HostDown{Target: s.targets[provider], Cause: cause, Instances: slices.Sorted(maps.Keys(held))}
	if hd.Target.ProviderUUID == "" {
		hd.Target.ProviderUUID = provider
	}
	s.mu.Lock()
	if _, already := s.down[provider]; already {
		s.mu.Unlock()
		return nil
	}
	s.down[provider] = hd
	s.mu.Unlock()
	if s.opts.onDown != nil {
		s.opts.onDown(hd)
	}
	return nil
}

func (s *Scheduler) isDown(provider string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.down[provider]
	return ok
}

// Down returns the hosts taken down so far.
func (s *Scheduler) Down() []HostDown {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := slices.Collect(maps.Values(s.down))
	slices.SortFunc(out, func(a, b HostDown) int { return strings.Compare(a.Target.ProviderUUID, b.Target.ProviderUUID) })
	return out
}

// Stats returns the claims tried and those that lost a race.
func (s *Scheduler) Stats() (decisions, conflicts int64) {
	return s.decisions.Load(), s.conflicts.Load()
}
