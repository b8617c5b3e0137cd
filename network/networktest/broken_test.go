package networktest_test

import (
	"context"
	"errors"
	"os"
	"testing"

	"github.com/dockervisor/dockervisor/internal/testenv"
	"github.com/dockervisor/dockervisor/network"
	"github.com/dockervisor/dockervisor/network/networktest"
)

// broken is a Recorder with one deliberate bug, selected by mode.
type broken struct {
	*networktest.Recorder
	mode string
}

func (b broken) Plug(ctx context.Context, id string, v network.VIF) error {
	if b.mode == "plug-not-idempotent" {
		if _, ok := b.Plugged()[v.ID]; ok {
			return errors.New("already plugged")
		}
	}
	if b.mode == "no-type-check" && v.Type == "no-such-type" {
		v.Type = network.VIFTypeBridge
	}
	return b.Recorder.Plug(ctx, id, v)
}

func (b broken) Attach(ctx context.Context, id string, v network.VIF, t network.Target) error {
	err := b.Recorder.Attach(ctx, id, v, t)
	if b.mode == "gone-untyped" && errors.Is(err, network.ErrNamespaceGone) {
		return errors.New("no such file or directory")
	}
	return err
}

func (b broken) Detach(ctx context.Context, id string, v network.VIF, t network.Target) error {
	if b.mode == "detach-keeps" {
		return nil
	}
	return b.Recorder.Detach(ctx, id, v, t)
}

func (b broken) Unplug(ctx context.Context, id string, v network.VIF) error {
	if _, ok := b.Plugged()[v.ID]; !ok && b.mode == "unplug-missing-fails" {
		return errors.New("not plugged")
	}
	return b.Recorder.Unplug(ctx, id, v)
}

const brokenEnv = "NETWORKTEST_BROKEN"

// TestBrokenDriverConformance runs the suite against a broken driver. It is
// run, and expected to fail, by TestSuiteCatchesBrokenDrivers.
func TestBrokenDriverConformance(t *testing.T) {
	mode := os.Getenv(brokenEnv)
	if mode == "" {
		t.Skip("run by TestSuiteCatchesBrokenDrivers")
	}
	networktest.TestVIFDriver(t, func(t *testing.T) networktest.Harness {
		h := networktest.NewRecorderHarness(t)
		h.Driver = broken{Recorder: h.Driver.(*networktest.Recorder), mode: mode}
		return h
	})
}

// TestSuiteCatchesBrokenDrivers checks that TestVIFDriver fails, in the
// right subtest, for drivers that break the contract.
func TestSuiteCatchesBrokenDrivers(t *testing.T) {
	testenv.SuiteCatchesBugs(t, "TestBrokenDriverConformance", brokenEnv, map[string]string{
		"plug-not-idempotent":  "PlugTwiceUnplugTwice",
		"unplug-missing-fails": "UnplugNeverPlugged",
		"detach-keeps":         "AttachDetach",
		"gone-untyped":         "NamespaceGone",
		"no-type-check":        "BadVIF",
	})
}
