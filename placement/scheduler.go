package placement

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/gophercloud/gophercloud/v2/openstack/placement/v1/allocationcandidates"

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

// query builds the allocation-candidates query of r.
func (r Request) query(limit int) (allocationcandidates.ListOpts, error) {
	if len(r.Resources) == 0 {
		return allocationcandidates.ListOpts{}, fmt.Errorf("%w: request without resources", ErrInvalidArgument)
	}
	parts := make([]string, 0, len(r.Resources))
	for _, class := range slices.Sorted(maps.Keys(r.Resources)) {
		n := r.Resources[class]
		if n <= 0 || !validTrait(class) {
			return allocationcandidates.ListOpts{}, fmt.Errorf("%w: resource %s:%d", ErrInvalidArgument, class, n)
		}
		parts = append(parts, fmt.Sprintf("%s:%d", class, n))
	}
	traits := make([]string, 0, len(r.Required)+len(r.Forbidden)+1)
	for _, t := range r.Required {
		if !validTrait(t) {
			return allocationcandidates.ListOpts{}, fmt.Errorf("%w: trait %q", ErrInvalidArgument, t)
		}
		traits = append(traits, t)
	}
	for _, t := range append([]string{TraitDisabled}, r.Forbidden...) {
		if !validTrait(t) {
			return allocationcandidates.ListOpts{}, fmt.Errorf("%w: trait %q", ErrInvalidArgument, t)
		}
		traits = append(traits, "!"+t)
	}
	return allocationcandidates.ListOpts{
		Resources: strings.Join(parts, ","),
		Required:  []string{strings.Join(traits, ",")},
		Limit:     limit,
	}, nil
}

// Usage is a provider's capacity and use of one resource class, as
// Placement's candidate summary reports it (capacity is (total -
// reserved) * allocation ratio).
type Usage struct {
	Capacity int
	Used     int
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

// WithCandidateLimit asks Placement for at most n candidates per
// decision (Placement's limit parameter; default no limit).
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
	o := schedulerOptions{weigher: Spread, maxAttempts: 10}
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
// disabled ones), best first by the Scheduler's weigher, restricted to
// its targets if it has any.
func (s *Scheduler) Candidates(ctx context.Context, req Request) ([]Candidate, error) {
	q, err := req.query(s.opts.limit)
	if err != nil {
		return nil, err
	}
	page, err := allocationcandidates.List(s.claimer.client, q).AllPages(ctx)
	if err != nil {
		return nil, classify("allocation candidates", err)
	}
	ac, err := allocationcandidates.ExtractAllocationCandidates(page)
	if err != nil {
		return nil, classify("allocation candidates", err)
	}
	out := make([]Candidate, 0, len(ac.AllocationRequests))
	for _, ar := range ac.AllocationRequests {
		if len(ar.Allocations) != 1 {
			continue // a single-host request only spans one provider
		}
		c := Candidate{Allocation: map[string]Resources{}}
		for rp, res := range ar.Allocations {
			c.ProviderUUID = rp
			c.Allocation[rp] = Resources(res.Resources)
		}
		if len(s.targets) > 0 {
			if _, ok := s.targets[c.ProviderUUID]; !ok {
				continue
			}
		}
		if sum, ok := ac.ProviderSummaries[c.ProviderUUID]; ok {
			c.Usage = make(map[string]Usage, len(sum.Resources))
			for class, r := range sum.Resources {
				c.Usage[class] = Usage{Capacity: r.Capacity, Used: r.Used}
			}
			if sum.Traits != nil {
				c.Traits = *sum.Traits
			}
		}
		out = append(out, c)
	}
	w := s.opts.weigher
	slices.SortStableFunc(out, func(a, b Candidate) int {
		if c := cmp.Compare(w.Weigh(req, b), w.Weigh(req, a)); c != 0 {
			return c
		}
		return strings.Compare(a.ProviderUUID, b.ProviderUUID)
	})
	return out, nil
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
	return s.selectExcept(ctx, id, req, nil, s.opts.maxAttempts)
}

func (s *Scheduler) selectExcept(ctx context.Context, id string, req Request, exclude map[string]bool, attempts int) (Decision, error) {
	d := Decision{ID: id}
	for d.Attempts < attempts {
		cands, err := s.Candidates(ctx, req)
		if err != nil {
			return d, err
		}
		cands = slices.DeleteFunc(cands, func(c Candidate) bool { return exclude[c.ProviderUUID] || s.isDown(c.ProviderUUID) })
		if len(cands) == 0 {
			// The capacity may be gone because this very consumer holds
			// it: another scheduler placed it.
			if held, err := s.claimer.Allocations(ctx, id); err == nil && len(held) > 0 {
				return d, fmt.Errorf("%w: %s", ErrAlreadyClaimed, id)
			}
			return d, fmt.Errorf("%w: for %s (%v)", ErrNoCandidates, id, req.Resources)
		}
		best := cands[0]
		d.Attempts++
		s.decisions.Add(1)
		err = s.claimer.Claim(ctx, id, best.Allocation)
		if err == nil {
			d.ProviderUUID = best.ProviderUUID
			d.Host = s.targets[best.ProviderUUID].Name
			return d, nil
		}
		if !errors.Is(err, ErrConflict) {
			return d, err
		}
		d.Conflicts++
		s.conflicts.Add(1)
	}
	return d, fmt.Errorf("%w: %s: %d claims lost to concurrent schedulers", ErrConflict, id, d.Conflicts)
}

// Place selects a host for spec (spec.ID is the consumer), claims it and
// spawns there. When the spawn fails the claim is released; when it
// failed because the engine did not answer (hypervisor.ErrUnavailable),
// the host is taken down (its provider disabled, see HostDown) and the
// instance is placed elsewhere. Other spawn errors are returned.
func (s *Scheduler) Place(ctx context.Context, spec hypervisor.InstanceSpec, req Request) (Decision, error) {
	if err := spec.Validate(); err != nil {
		return Decision{ID: spec.ID}, err
	}
	done := s.claimer.begin(spec.ID)
	defer done()
	exclude := map[string]bool{}
	var total Decision
	for total.Attempts < s.opts.maxAttempts {
		d, err := s.selectExcept(ctx, spec.ID, req, exclude, s.opts.maxAttempts-total.Attempts)
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
			return total, nil
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
