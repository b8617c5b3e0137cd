package placement

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/placement/v1/allocations"

	"github.com/dockervisor/dockervisor/hypervisor"
)

// Resources are amounts by resource class, such as {"VCPU": 1,
// "MEMORY_MB": 256}.
type Resources map[string]int

// InstanceResources returns what an instance of this flavor consumes:
// VCPU (zero read as one), MEMORY_MB when it has a memory limit, and
// DISK_GB when diskGB > 0.
func InstanceResources(vcpus int, memoryMB int64, diskGB int) Resources {
	r := Resources{VCPU: max(vcpus, 1)}
	if memoryMB > 0 {
		r[MemoryMB] = int(memoryMB)
	}
	if diskGB > 0 {
		r[DiskGB] = diskGB
	}
	return r
}

// ConsumerTypeInstance is the consumer type of the claims (Nova's).
const ConsumerTypeInstance = "INSTANCE"

// Owner is the project and user that Placement records for a claim.
// Zero fields mean DefaultProjectID and DefaultUserID.
type Owner struct {
	ProjectID string
	UserID    string
}

// Defaults of Owner.
const (
	DefaultProjectID = "dockervisor"
	DefaultUserID    = "dockervisor"
)

// Claimer claims and releases allocations, one consumer per instance: the
// consumer UUID is the instance ID. It is safe for concurrent use.
type Claimer struct {
	client *gophercloud.ServiceClient
	owner  Owner

	mu       sync.Mutex
	inflight map[string]int // consumers between claim and the end of their spawn
}

// NewClaimer returns a Claimer that writes allocations through client on
// behalf of owner.
func NewClaimer(client *gophercloud.ServiceClient, owner Owner) (*Claimer, error) {
	if client == nil {
		return nil, fmt.Errorf("%w: nil client", ErrInvalidArgument)
	}
	if owner.ProjectID == "" {
		owner.ProjectID = DefaultProjectID
	}
	if owner.UserID == "" {
		owner.UserID = DefaultUserID
	}
	return &Claimer{client: client, owner: owner, inflight: map[string]int{}}, nil
}

// Client returns the Placement client of c.
func (c *Claimer) Client() *gophercloud.ServiceClient { return c.client }

// Claim allocates resources for the new consumer id, by provider UUID,
// in one request. It returns ErrAlreadyClaimed if id holds allocations
// already (a claim is never overwritten), ErrConflict if a provider's
// capacity would be exceeded (another claim got there first: ask for
// fresh candidates), and ErrInvalidArgument for a malformed id or an
// empty claim.
func (c *Claimer) Claim(ctx context.Context, id string, alloc map[string]Resources) error {
	if !ValidUUID(id) {
		return fmt.Errorf("%w: consumer %q: instance IDs placed through Placement must be lower-case UUIDs", ErrInvalidArgument, id)
	}
	if len(alloc) == 0 {
		return fmt.Errorf("%w: empty claim for %s", ErrInvalidArgument, id)
	}
	req := allocations.UpdateOpts{
		Allocations:  map[string]allocations.ProviderAllocationsOpts{},
		ProjectID:    c.owner.ProjectID,
		UserID:       c.owner.UserID,
		ConsumerType: ConsumerTypeInstance,
		// nil: a new consumer. Placement refuses the claim if the
		// consumer exists, which is what makes double placement
		// impossible.
		ConsumerGeneration: nil,
	}
	for rp, res := range alloc {
		if !ValidUUID(rp) || len(res) == 0 {
			return fmt.Errorf("%w: claim for %s on provider %q with %v", ErrInvalidArgument, id, rp, res)
		}
		req.Allocations[rp] = allocations.ProviderAllocationsOpts{Resources: res}
	}
	err := allocations.Update(ctx, c.client, id, req).ExtractErr()
	if err == nil {
		return nil
	}
	if gophercloud.ResponseCodeIs(err, 409) {
		if held, gerr := c.Allocations(ctx, id); gerr == nil && len(held) > 0 {
			return fmt.Errorf("%w: %s", ErrAlreadyClaimed, id)
		}
	}
	return classify("claim "+id, err)
}

// Allocations returns the allocations of consumer id by provider UUID,
// empty when it has none.
func (c *Claimer) Allocations(ctx context.Context, id string) (map[string]Resources, error) {
	a, err := allocations.Get(ctx, c.client, id).Extract()
	if err != nil {
		return nil, classify("get allocations "+id, err)
	}
	out := make(map[string]Resources, len(a.Allocations))
	for rp, pa := range a.Allocations {
		out[rp] = Resources(pa.Resources)
	}
	return out, nil
}

// Release removes every allocation of consumer id. It returns nil if
// there is none.
func (c *Claimer) Release(ctx context.Context, id string) error {
	err := allocations.Delete(ctx, c.client, id).ExtractErr()
	if err != nil && gophercloud.ResponseCodeIs(err, 404) {
		return nil
	}
	return classify("release "+id, err)
}

// begin marks id as being spawned, so Reconcile leaves its claim alone.
func (c *Claimer) begin(id string) func() {
	c.mu.Lock()
	c.inflight[id]++
	c.mu.Unlock()
	return func() {
		c.mu.Lock()
		if c.inflight[id]--; c.inflight[id] == 0 {
			delete(c.inflight, id)
		}
		c.mu.Unlock()
	}
}

func (c *Claimer) isInflight(id string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.inflight[id] > 0
}

// SpawnClaimed claims alloc for spec.ID, then spawns spec on drv. When
// the spawn fails the claim is removed and the spawn's error returned
// (joined with the release's error, if that failed too). The claim is
// not made and nothing is spawned if the claim fails.
func SpawnClaimed(ctx context.Context, c *Claimer, drv hypervisor.Lifecycle, alloc map[string]Resources, spec hypervisor.InstanceSpec) (hypervisor.Instance, error) {
	if err := spec.Validate(); err != nil {
		return hypervisor.Instance{}, err
	}
	done := c.begin(spec.ID)
	defer done()
	if err := c.Claim(ctx, spec.ID, alloc); err != nil {
		return hypervisor.Instance{}, err
	}
	return spawnOnClaim(ctx, c, drv, spec)
}

// spawnOnClaim spawns spec, whose claim is held, and releases the claim
// when the spawn fails.
func spawnOnClaim(ctx context.Context, c *Claimer, drv hypervisor.Lifecycle, spec hypervisor.InstanceSpec) (hypervisor.Instance, error) {
	inst, err := drv.Spawn(ctx, spec)
	if err == nil || errors.Is(err, hypervisor.ErrAlreadyExists) {
		// An instance of that ID exists on the host: the claim is the
		// one it runs on (another scheduler's, raced), not this spawn's
		// to release.
		return inst, err
	}
	if rerr := c.Release(context.WithoutCancel(ctx), spec.ID); rerr != nil {
		return hypervisor.Instance{}, errors.Join(err, rerr)
	}
	return hypervisor.Instance{}, err
}

// DestroyReleased destroys instance id on drv and then releases its
// claim. If Destroy fails the claim stays (the instance may still use
// the resources). Nil if neither exists.
func DestroyReleased(ctx context.Context, c *Claimer, drv hypervisor.Lifecycle, id string) error {
	if err := drv.Destroy(ctx, id); err != nil {
		return err
	}
	return c.Release(ctx, id)
}

// ReconcilePolicy says what Reconcile does with the differences it finds.
type ReconcilePolicy int

const (
	// ReportOnly reports differences and changes nothing.
	ReportOnly ReconcilePolicy = iota
	// Fix also repairs them: orphaned allocations on the provider are
	// removed, instances without a claim are claimed on the provider,
	// and mismatched claims are rewritten to the instance's flavor.
	Fix
)

// Drift is what Reconcile found on one provider.
type Drift struct {
	// Orphaned are consumers holding allocations on the provider without
	// an instance on the host.
	Orphaned []string
	// Unclaimed are instances on the host without allocations on the
	// provider.
	Unclaimed []string
	// Elsewhere are instances on the host whose allocations are on other
	// providers only (Fix leaves them: moving a claim is the caller's
	// decision).
	Elsewhere []string
	// Mismatched are instances whose allocation on the provider differs
	// from their flavor.
	Mismatched []string
	// Unaccountable are instances whose ID is not a UUID, so Placement
	// cannot hold a claim for them.
	Unaccountable []string
	// Fixed is true when the policy was Fix and every repair succeeded.
	Fixed bool
}

// Empty reports whether allocations and instances agreed.
func (d Drift) Empty() bool {
	return len(d.Orphaned)+len(d.Unclaimed)+len(d.Elsewhere)+len(d.Mismatched)+len(d.Unaccountable) == 0
}

// Reconcile compares the allocations held on provider with the instances
// on drv (each instance should hold InstanceResources of its flavor,
// plus any other classes the claim had) and reports the differences; with
// Fix it repairs them. Consumers this Claimer is spawning right now are
// skipped. Another process spawning on the same host can have a claim
// without its instance for a moment: run Fix where this Claimer is the
// host's only writer.
func (c *Claimer) Reconcile(ctx context.Context, drv hypervisor.Lifecycle, provider string, policy ReconcilePolicy) (Drift, error) {
	var d Drift
	held, err := ProviderAllocations(ctx, c.client, provider)
	if err != nil {
		return d, err
	}
	insts, err := drv.List(ctx, hypervisor.ListOptions{})
	if err != nil {
		return d, fmt.Errorf("placement: reconcile: list instances: %w", err)
	}
	onHost := map[string]hypervisor.Instance{}
	for _, in := range insts {
		if !ValidUUID(in.ID) {
			d.Unaccountable = append(d.Unaccountable, in.ID)
			continue
		}
		onHost[in.ID] = in
	}
	var errs []error
	for _, consumer := range slices.Sorted(maps.Keys(held)) {
		if _, ok := onHost[consumer]; ok || c.isInflight(consumer) {
			continue
		}
		d.Orphaned = append(d.Orphaned, consumer)
		if policy == Fix {
			errs = append(errs, c.dropProvider(ctx, consumer, provider))
		}
	}
	for _, id := range slices.Sorted(maps.Keys(onHost)) {
		in := onHost[id]
		if c.isInflight(id) {
			continue
		}
		want := InstanceResources(in.VCPUs, in.MemoryMB, 0)
		got, ok := held[id]
		if !ok {
			all, err := c.Allocations(ctx, id)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			if len(all) > 0 {
				d.Elsewhere = append(d.Elsewhere, id)
				continue
			}
			d.Unclaimed = append(d.Unclaimed, id)
			if policy == Fix {
				errs = append(errs, c.Claim(ctx, id, map[string]Resources{provider: want}))
			}
			continue
		}
		if !covers(got, want) {
			d.Mismatched = append(d.Mismatched, id)
			if policy == Fix {
				fixed := maps.Clone(got)
				maps.Copy(fixed, want)
				errs = append(errs, c.rewrite(ctx, id, provider, fixed))
			}
		}
	}
	err = errors.Join(errs...)
	d.Fixed = policy == Fix && err == nil
	return d, err
}

// covers reports whether the claim got has exactly want's amounts of
// want's classes and, for the standard classes an instance's flavor
// defines, no others.
func covers(got, want Resources) bool {
	for class, n := range want {
		if got[class] != n {
			return false
		}
	}
	for _, class := range []string{VCPU, MemoryMB} {
		if _, ok := want[class]; !ok && got[class] != 0 {
			return false
		}
	}
	return true
}

// dropProvider removes consumer's allocation on provider, keeping its
// allocations elsewhere.
func (c *Claimer) dropProvider(ctx context.Context, consumer, provider string) error {
	return c.edit(ctx, consumer, func(m map[string]Resources) { delete(m, provider) })
}

// rewrite sets consumer's allocation on provider to res.
func (c *Claimer) rewrite(ctx context.Context, consumer, provider string, res Resources) error {
	return c.edit(ctx, consumer, func(m map[string]Resources) { m[provider] = res })
}

// edit rewrites a consumer's allocations with its consumer generation,
// retrying on a conflict.
func (c *Claimer) edit(ctx context.Context, consumer string, f func(map[string]Resources)) error {
	for range maxGenerationRetries {
		a, err := allocations.Get(ctx, c.client, consumer).Extract()
		if err != nil {
			return classify("get allocations "+consumer, err)
		}
		m := map[string]Resources{}
		for rp, pa := range a.Allocations {
			m[rp] = Resources(pa.Resources)
		}
		f(m)
		if len(m) == 0 {
			return c.Release(ctx, consumer)
		}
		req := allocations.UpdateOpts{
			Allocations:        map[string]allocations.ProviderAllocationsOpts{},
			ProjectID:          deref(a.ProjectID, c.owner.ProjectID),
			UserID:             deref(a.UserID, c.owner.UserID),
			ConsumerType:       deref(a.ConsumerType, ConsumerTypeInstance),
			ConsumerGeneration: a.ConsumerGeneration,
		}
		for rp, res := range m {
			req.Allocations[rp] = allocations.ProviderAllocationsOpts{Resources: res}
		}
		err = allocations.Update(ctx, c.client, consumer, req).ExtractErr()
		if err == nil {
			return nil
		}
		if !isGenerationConflict(err) {
			return classify("update allocations "+consumer, err)
		}
	}
	return fmt.Errorf("%w: update allocations %s: generation conflicts", ErrConflict, consumer)
}

func deref(p *string, def string) string {
	if p == nil || *p == "" {
		return def
	}
	return *p
}
