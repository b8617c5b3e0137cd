package hypervisortest_test

import (
	"context"
	"errors"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/dockervisor/dockervisor/hypervisor"
	"github.com/dockervisor/dockervisor/hypervisor/hypervisortest"
	"github.com/dockervisor/dockervisor/image/imagetest"
	"github.com/dockervisor/dockervisor/internal/testenv"
	"github.com/dockervisor/dockervisor/stats"
)

// broken is a Fake with one deliberate bug, selected by mode, of the kind
// real backends have had (nova-docker reported paused instances as running).
type broken struct {
	*hypervisortest.Fake
	mode      string
	poweredOn *sync.Map // instance IDs started by PowerOn, for "vifs-lost-on-poweron"
}

// InstanceStats, in mode "vifs-lost-on-poweron", shows an instance that
// PowerOn started without its interfaces, as nova-docker's power-on left
// it (the namespace, and the VIFs in it, die with the process).
func (b broken) InstanceStats(ctx context.Context, id string) (stats.Instance, error) {
	s, err := b.Fake.InstanceStats(ctx, id)
	if _, ok := b.poweredOn.Load(id); ok && b.mode == "vifs-lost-on-poweron" {
		s.Interfaces = nil
	}
	return s, b.fix(err)
}

func (b broken) Info(ctx context.Context, id string) (hypervisor.InstanceInfo, error) {
	info, err := b.Fake.Info(ctx, id)
	if b.mode == "paused-as-running" && info.State == hypervisor.StatePaused {
		info.State = hypervisor.StateRunning
	}
	return info, b.fix(err)
}

func (b broken) PowerOn(ctx context.Context, id string) error {
	if b.mode == "poweron-restarts" {
		return b.Fake.Reboot(ctx, id, hypervisor.RebootOptions{Hard: true})
	}
	b.poweredOn.Store(id, true)
	return b.fix(b.Fake.PowerOn(ctx, id))
}

func (b broken) Restore(ctx context.Context, id string) error {
	if b.mode == "restore-anything" {
		if err := b.Fake.PowerOn(ctx, id); err == nil {
			return nil
		}
	}
	return b.fix(b.Fake.Restore(ctx, id))
}

func (b broken) Destroy(ctx context.Context, id string) error {
	err := b.Fake.Destroy(ctx, id)
	if b.mode == "destroy-missing-fails" && err == nil {
		if _, ierr := b.Fake.Info(ctx, id); errors.Is(ierr, hypervisor.ErrNotFound) {
			// Second call of a Destroy pair: report not found.
			return &hypervisor.OpError{Op: "destroy", ID: id, Err: hypervisor.ErrNotFound}
		}
	}
	return b.fix(err)
}

func (b broken) Pause(ctx context.Context, id string) error {
	return b.fix(b.Fake.Pause(ctx, id))
}

func (b broken) Spawn(ctx context.Context, spec hypervisor.InstanceSpec) (hypervisor.Instance, error) {
	inst, err := b.Fake.Spawn(ctx, spec)
	if b.mode == "spawn-replaces" && errors.Is(err, hypervisor.ErrAlreadyExists) {
		_ = b.Fake.Destroy(ctx, spec.ID)
		return b.Fake.Spawn(ctx, spec)
	}
	return inst, b.fix(err)
}

func (b broken) Events(ctx context.Context) (<-chan hypervisor.Event, <-chan error) {
	in, errc := b.Fake.Events(ctx)
	if b.mode != "no-pause-events" && b.mode != "snapshot-pause-unmarked" {
		return in, errc
	}
	out := make(chan hypervisor.Event)
	go func() {
		defer close(out)
		for ev := range in {
			switch {
			case b.mode == "snapshot-pause-unmarked":
				ev.Cause = ""
				out <- ev
			case ev.Type != hypervisor.EventPaused:
				out <- ev
			}
		}
	}()
	return out, errc
}

func (b broken) Exec(ctx context.Context, id string, spec hypervisor.ExecSpec) (hypervisor.ExecResult, error) {
	res, err := b.Fake.Exec(ctx, id, spec)
	if b.mode == "exec-exit-zero" {
		res.ExitCode = 0
	}
	return res, b.fix(err)
}

func (b broken) AttachConsole(ctx context.Context, id string, opts hypervisor.ConsoleAttachOptions) (hypervisor.Console, error) {
	c, err := b.Fake.AttachConsole(ctx, id, opts)
	if err == nil && b.mode == "console-drops-input" {
		c = dropInput{c}
	}
	return c, b.fix(err)
}

// dropInput is a console whose input goes nowhere.
type dropInput struct{ hypervisor.Console }

func (dropInput) Write(p []byte) (int, error) { return len(p), nil }

func (b broken) Rebuild(ctx context.Context, id, img string) error {
	if b.mode != "rebuild-forgets-metadata" {
		return b.fix(b.Fake.Rebuild(ctx, id, img))
	}
	// Delete and spawn again from what Info shows, without the metadata.
	info, err := b.Fake.Info(ctx, id)
	if err != nil {
		return err
	}
	if err := b.Fake.Destroy(ctx, id); err != nil {
		return err
	}
	_, err = b.Fake.Spawn(ctx, hypervisor.InstanceSpec{ID: id, Name: info.Name, Image: img, VCPUs: info.VCPUs, MemoryMB: info.MemoryMB, Labels: info.Labels, Command: []string{"sleep", "3600"}})
	return err
}

// fix applies the "plain-errors" bug: errors without their *OpError.
func (b broken) fix(err error) error {
	if oe, ok := errors.AsType[*hypervisor.OpError](err); ok && b.mode == "plain-errors" {
		return oe.Err
	}
	return err
}

const brokenEnv = "HYPERVISORTEST_BROKEN"

// TestBrokenDriverConformance runs the suite against a broken driver. It is
// run, and expected to fail, by TestSuiteCatchesBrokenDrivers.
func TestBrokenDriverConformance(t *testing.T) {
	mode := os.Getenv(brokenEnv)
	if mode == "" {
		t.Skip("run by TestSuiteCatchesBrokenDrivers")
	}
	hypervisortest.TestDriver(t, func(t *testing.T) hypervisortest.Harness {
		store := imagetest.NewMemStore()
		h := hypervisortest.NewFakeHarness(t, hypervisortest.WithSnapshotStore(store))
		h.Snapshots, h.BootFromSnapshot = store, true
		h.Driver = broken{Fake: h.Driver.(*hypervisortest.Fake), mode: mode, poweredOn: new(sync.Map)}
		h.StateTimeout = 2 * time.Second
		return h
	})
}

// TestSuiteCatchesBrokenDrivers checks that TestDriver fails, in the right
// subtest, for drivers that break the contract.
func TestSuiteCatchesBrokenDrivers(t *testing.T) {
	testenv.SuiteCatchesBugs(t, "TestBrokenDriverConformance", brokenEnv, map[string]string{
		"paused-as-running":        "StateTable/paused",
		"poweron-restarts":         "StateTable/running",
		"restore-anything":         "StateTable/shutdown",
		"destroy-missing-fails":    "Destroy",
		"spawn-replaces":           "SpawnDuplicate",
		"no-pause-events":          "Events",
		"plain-errors":             "MissingAndInvalidID",
		"exec-exit-zero":           "Exec",
		"console-drops-input":      "ConsoleAttach",
		"vifs-lost-on-poweron":     "VIFs",
		"snapshot-pause-unmarked":  "Snapshot",
		"rebuild-forgets-metadata": "Rebuild",
	})
}
