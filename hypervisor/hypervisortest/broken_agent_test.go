package hypervisortest_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/dockervisor/dockervisor/hypervisor"
	"github.com/dockervisor/dockervisor/hypervisor/hypervisortest"
	"github.com/dockervisor/dockervisor/internal/testenv"
)

// brokenAgent is a Fake with one deliberate bug in its AgentDriver roles,
// of the kinds the issue names (limits lost, reconciles that remove what
// is being spawned, resumes that miss instances, a snapshot's pause that
// nothing records).
type brokenAgent struct {
	*hypervisortest.Fake
	mode string
}

func (b brokenAgent) Resize(ctx context.Context, id string, f hypervisor.Flavor) error {
	if b.mode == "resize-ignores-usage" && f.MemoryMB >= hypervisor.MinMemoryMB {
		f.MemoryMB = max(f.MemoryMB, 64) // pretends to accept any limit
		if err := b.Fake.Resize(ctx, id, f); err != nil {
			return err
		}
		return nil
	}
	return b.Fake.Resize(ctx, id, f)
}

func (b brokenAgent) Reconcile(ctx context.Context, opts hypervisor.ReconcileOptions) (hypervisor.ReconcileReport, error) {
	if b.mode == "reconcile-reports-only" {
		opts.Policy = hypervisor.ReconcileReportOnly
	}
	return b.Fake.Reconcile(ctx, opts)
}

func (b brokenAgent) Resume(ctx context.Context, opts hypervisor.ResumeOptions) (hypervisor.ResumeReport, error) {
	if b.mode == "resume-nothing" {
		return hypervisor.ResumeReport{Time: time.Now()}, nil
	}
	return b.Fake.Resume(ctx, opts)
}

func (b brokenAgent) SpawnWithOptions(ctx context.Context, spec hypervisor.InstanceSpec, opts hypervisor.SpawnOptions) (hypervisor.Instance, error) {
	if b.mode == "create-starts" {
		opts.CreateOnly = false
	}
	return b.Fake.SpawnWithOptions(ctx, spec, opts)
}

func (b brokenAgent) EventsSince(ctx context.Context, opts hypervisor.EventOptions) (<-chan hypervisor.Event, <-chan error) {
	if b.mode == "no-replay" {
		opts.Since = time.Time{}
	}
	return b.Fake.EventsSince(ctx, opts)
}

// TestBrokenAgentConformance runs the agent suite against a broken
// driver. It is run, and expected to fail, by
// TestAgentSuiteCatchesBrokenDrivers.
func TestBrokenAgentConformance(t *testing.T) {
	mode := os.Getenv(brokenEnv)
	if mode == "" {
		t.Skip("run by TestAgentSuiteCatchesBrokenDrivers")
	}
	hypervisortest.TestAgentDriver(t, func(t *testing.T) hypervisortest.AgentHarness {
		h := hypervisortest.NewFakeAgentHarness(t)
		fake := h.Driver.(*hypervisortest.Fake)
		h.Driver = brokenAgent{Fake: fake, mode: mode}
		if mode == "snapshot-pause-unrecorded" {
			// A driver that does not record that its snapshot paused the
			// instance: after a crash, nothing tells it from a user's.
			h.InterruptSnapshot = func(t *testing.T, id string) {
				if err := fake.Pause(t.Context(), id); err != nil {
					t.Fatal(err)
				}
			}
		}
		h.StateTimeout = 2 * time.Second
		return h
	})
}

// TestAgentSuiteCatchesBrokenDrivers checks that TestAgentDriver fails,
// in the right subtest, for drivers that break the contract.
func TestAgentSuiteCatchesBrokenDrivers(t *testing.T) {
	testenv.SuiteCatchesBugs(t, "TestBrokenAgentConformance", brokenEnv, map[string]string{
		"resize-ignores-usage":      "group/ResizeFaults",
		"reconcile-reports-only":    "group/Reconcile",
		"resume-nothing":            "group/Resume",
		"create-starts":             "group/CreateOnly",
		"no-replay":                 "group/EventReplay",
		"snapshot-pause-unrecorded": "group/InterruptedSnapshot",
	})
}
