package placement

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/dockervisor/dockervisor/hypervisor"
)

// DefaultSweepAge is a least age for Sweep that is far longer than any
// Place's check of its claim after the spawn (a few of the claim's round
// trips, or WithClaimSettle, and at most a few seconds more when the
// claim has to be made again).
const DefaultSweepAge = 2 * time.Minute

// SweepReport is what Sweep found and did.
type SweepReport struct {
	// Kept maps each instance Sweep settled to the provider whose copy
	// stayed: the one holding the instance's allocations.
	Kept map[string]string
	// Removed maps each instance Sweep settled to the providers whose
	// copies it destroyed.
	Removed map[string][]string
	// Unsettled are instances running on more than one target whose
	// allocations are on none of those targets' providers, or on more
	// than one of them: Sweep left every copy, since which one should
	// stay is the caller's decision.
	Unsettled []string
	// Young are instances running on more than one target with a copy
	// younger than the least age (or of unknown age), left for a later
	// sweep.
	Young []string
}

// Empty reports whether the sweep found no instance running twice.
func (r SweepReport) Empty() bool {
	return len(r.Kept)+len(r.Unsettled)+len(r.Young) == 0
}

// sweepCopy is one copy of an instance: where it runs and since when.
type sweepCopy struct {
	provider string
	created  time.Time
}

// Sweep settles instances that run on more than one of the Scheduler's
// targets. Place checks its claim after the spawn and gives way when
// another scheduler's concurrent claim replaced it, but a replacing claim
// that Placement answers later than that check waits, or a check whose
// read fails, can leave the instance running on two hosts; Sweep is the
// periodic pass that finds them. For each instance (a UUID) that List
// shows on two or more of the targets not taken down, every copy at least
// minAge old and none being placed by this Scheduler right now, it reads
// the instance's allocations: the copy on the provider holding them stays
// and the others are destroyed. Claims are not touched: the kept copy's
// claim is the instance's. An instance whose allocations are on none of
// the providers running it, or on more than one, is left as it is and
// reported Unsettled.
//
// minAge keeps Sweep away from placements still in progress, in this
// process or another: until Place's check has ended, which claim holds can
// still change. DefaultSweepAge is far longer than such a check; 0 settles
// every duplicate at once, for a caller that knows nothing is being
// placed. A copy of unknown age (a driver reporting no creation time)
// counts as young unless minAge is 0. A negative minAge is
// ErrInvalidArgument. A target that cannot be listed, or a read of
// allocations or a destroy that fails, is reported in the returned
// (joined) error, and the rest of the sweep goes on.
func (s *Scheduler) Sweep(ctx context.Context, minAge time.Duration) (SweepReport, error) {
	rep := SweepReport{Kept: map[string]string{}, Removed: map[string][]string{}}
	if minAge < 0 {
		return rep, fmt.Errorf("%w: negative sweep age %s", ErrInvalidArgument, minAge)
	}
	var errs []error
	copies := map[string][]sweepCopy{}
	for _, p := range slices.Sorted(maps.Keys(s.targets)) {
		if s.isDown(p) {
			continue
		}
		t := s.targets[p]
		insts, err := t.Driver.List(ctx, hypervisor.ListOptions{})
		if err != nil {
			errs = append(errs, fmt.Errorf("placement: sweep: list the instances on %s: %w", t.Name, err))
			continue
		}
		for _, in := range insts {
			if ValidUUID(in.ID) {
				copies[in.ID] = append(copies[in.ID], sweepCopy{provider: p, created: in.CreatedAt})
			}
		}
	}
	now := time.Now()
	young := func(c sweepCopy) bool {
		return minAge > 0 && (c.created.IsZero() || now.Sub(c.created) < minAge)
	}
	for _, id := range slices.Sorted(maps.Keys(copies)) {
		cs := copies[id]
		if len(cs) < 2 || s.claimer.isInflight(id) {
			continue
		}
		if slices.ContainsFunc(cs, young) {
			rep.Young = append(rep.Young, id)
			continue
		}
		held, err := s.claimer.Allocations(ctx, id)
		if err != nil {
			errs = append(errs, fmt.Errorf("placement: sweep: %s: %w", id, err))
			continue
		}
		var holders []string
		for _, c := range cs {
			if _, ok := held[c.provider]; ok {
				holders = append(holders, c.provider)
			}
		}
		if len(holders) != 1 {
			rep.Unsettled = append(rep.Unsettled, id)
			continue
		}
		keep := holders[0]
		rep.Kept[id] = keep
		for _, c := range cs {
			if c.provider == keep {
				continue
			}
			t := s.targets[c.provider]
			if err := t.Driver.Destroy(ctx, id); err != nil {
				errs = append(errs, fmt.Errorf("placement: sweep: destroy %s's copy on %s: %w", id, t.Name, err))
				continue
			}
			rep.Removed[id] = append(rep.Removed[id], c.provider)
		}
	}
	return rep, errors.Join(errs...)
}
