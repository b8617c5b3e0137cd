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

// DefaultSweepAge is a least age for Sweep well beyond the longest
// check of a claim after the spawn that Place makes with the default
// settle: it waits until the claim is three of its round trips old (at
// most maxRTTSettle) and then spends at most confirmTimeout reading and
// claiming again. A Scheduler with a WithClaimSettle longer than
// maxRTTSettle needs a least age of at least that settle plus
// confirmTimeout and a margin: ten minutes more is ample.
const DefaultSweepAge = 10 * time.Minute

// SweepReport is what Sweep found and did. Instances this Scheduler was
// placing while it swept are in none of its lists.
type SweepReport struct {
	// Kept maps each instance Sweep settled to the provider whose copy
	// stayed: the one holding the instance's allocations. Every other
	// copy of it was destroyed.
	Kept map[string]string
	// Removed maps each instance to the providers whose copies Sweep
	// destroyed (also for one whose other destroys failed: those are in
	// the error, and the instance is not in Kept).
	Removed map[string][]string
	// Unsettled are instances running on more than one target whose
	// allocations are on none of those targets' providers, or on more
	// than one of them: Sweep left every copy, since which one should
	// stay is the caller's decision.
	Unsettled []string
	// Young are instances running on more than one target with a copy
	// younger than the least age (or of unknown age), or whose
	// allocations moved while Sweep looked: left for a later sweep.
	Young []string
}

// Empty reports whether the sweep found no instance running twice.
func (r SweepReport) Empty() bool {
	return len(r.Kept)+len(r.Removed)+len(r.Unsettled)+len(r.Young) == 0
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
// reads fail, can leave the instance running on two hosts; Sweep is the
// periodic pass that finds them. For each instance (a UUID) that List
// shows on two or more of the targets not taken down, every copy at least
// minAge old and none being placed by this Scheduler right now, it reads
// the instance's allocations twice, confirmSettle apart: if the same one
// of the providers running it holds them both times, that copy stays and
// the others are destroyed. Claims are not touched: the kept copy's claim
// is the instance's. An instance whose allocations are on none of the
// providers running it, or on more than one, is left as it is and
// reported Unsettled; one whose allocations moved between the reads is
// left for a later sweep (Young).
//
// minAge keeps Sweep away from placements still in progress, in this
// process or another: until Place's check has ended, which claim holds can
// still change, and destroying a copy then could leave the instance
// nowhere. DefaultSweepAge says how long that check can last; 0 settles
// every duplicate at once, for a caller that knows nothing is being
// placed. Ages come from the engines' creation times and this host's
// clock, so the hosts' clocks must agree to well within minAge (as NTP
// keeps them). A copy of unknown age (a driver reporting no creation
// time) counts as young unless minAge is 0. A negative minAge is
// ErrInvalidArgument. A target that cannot be listed, or a read of
// allocations or a destroy that fails, is reported in the returned
// (joined) error, and the rest of the sweep goes on; a cancelled ctx ends
// it.
func (s *Scheduler) Sweep(ctx context.Context, minAge time.Duration) (SweepReport, error) {
	rep := SweepReport{Kept: map[string]string{}, Removed: map[string][]string{}}
	if minAge < 0 {
		return rep, fmt.Errorf("%w: negative sweep age %s", ErrInvalidArgument, minAge)
	}
	var errs []error
	// cancelled ends the sweep with what it found so far and ctx's error.
	cancelled := func() (SweepReport, error) { return rep, errors.Join(append(errs, ctx.Err())...) }
	copies := map[string][]sweepCopy{}
	for _, p := range slices.Sorted(maps.Keys(s.targets)) {
		if s.isDown(p) {
			continue
		}
		t := s.targets[p]
		insts, err := t.Driver.List(ctx, hypervisor.ListOptions{})
		if err != nil {
			if ctx.Err() != nil {
				return cancelled()
			}
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
	// holder reads id's allocations and returns the one provider of cs
	// holding them, or "" when none or several do.
	holder := func(id string, cs []sweepCopy) (string, error) {
		held, err := s.claimer.Allocations(ctx, id)
		if err != nil {
			return "", fmt.Errorf("placement: sweep: %s: %w", id, err)
		}
		var holders []string
		for _, c := range cs {
			if _, ok := held[c.provider]; ok {
				holders = append(holders, c.provider)
			}
		}
		if len(holders) != 1 {
			return "", nil
		}
		return holders[0], nil
	}
	first := map[string]string{} // duplicates to settle: their holder at the first read
	for _, id := range slices.Sorted(maps.Keys(copies)) {
		if ctx.Err() != nil {
			return cancelled()
		}
		cs := copies[id]
		if len(cs) < 2 || s.claimer.isInflight(id) {
			continue
		}
		if slices.ContainsFunc(cs, young) {
			rep.Young = append(rep.Young, id)
			continue
		}
		h, err := holder(id, cs)
		switch {
		case err != nil:
			errs = append(errs, err)
		case h == "":
			rep.Unsettled = append(rep.Unsettled, id)
		default:
			first[id] = h
		}
	}
	if len(first) > 0 && !sleepCtx(ctx, confirmSettle) {
		return cancelled()
	}
	for _, id := range slices.Sorted(maps.Keys(first)) {
		if ctx.Err() != nil {
			return cancelled()
		}
		cs := copies[id]
		if s.claimer.isInflight(id) {
			continue
		}
		h, err := holder(id, cs)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if h != first[id] {
			rep.Young = append(rep.Young, id)
			continue
		}
		settled := true
		for _, c := range cs {
			if c.provider == h {
				continue
			}
			t := s.targets[c.provider]
			if err := t.Driver.Destroy(ctx, id); err != nil {
				errs = append(errs, fmt.Errorf("placement: sweep: destroy %s's copy on %s: %w", id, t.Name, err))
				settled = false
				continue
			}
			rep.Removed[id] = append(rep.Removed[id], c.provider)
		}
		if settled {
			rep.Kept[id] = h
		}
	}
	slices.Sort(rep.Young)
	return rep, errors.Join(errs...)
}
