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

// sameName returns the VIFs, by port ID, that hold v's tap name: the ones
// a driver that deletes by name would take.
func (b broken) sameName(v network.VIF) map[string]string {
	want, _ := network.DeviceNames(v.ID)
	out := map[string]string{}
	for id := range b.Plugged() {
		b.addSame(out, id, want.Tap)
	}
	for id := range b.Attached() {
		b.addSame(out, id, want.Tap)
	}
	return out
}

func (b broken) addSame(out map[string]string, id, tap string) {
	if d, _ := network.DeviceNames(id); d.Tap == tap {
		inst, _ := b.InstanceOf(id)
		out[id] = inst
	}
}

func (b broken) Plug(ctx context.Context, id string, v network.VIF) error {
	switch b.mode {
	case "plug-deletes-by-name":
		// The bug this suite's ownership cases were written for: delete
		// whatever has the tap's name, then plug.
		for port, inst := range b.sameName(v) {
			_ = b.Recorder.Unplug(ctx, inst, network.VIF{ID: port})
		}
	case "plug-takes-foreign-device":
		d, _ := network.DeviceNames(v.ID)
		for _, n := range []string{d.Tap, d.Bridge, d.VethBridge, d.VethOVS, d.Guest} {
			b.RemoveHostDevice(n)
		}
	}
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
	if b.mode == "detach-deletes-by-name" {
		for port, inst := range b.sameName(v) {
			_ = b.Recorder.Detach(ctx, inst, network.VIF{ID: port}, t)
		}
	}
	return b.Recorder.Detach(ctx, id, v, t)
}

func (b broken) Unplug(ctx context.Context, id string, v network.VIF) error {
	if _, ok := b.Plugged()[v.ID]; !ok && b.mode == "unplug-missing-fails" {
		return errors.New("not plugged")
	}
	if b.mode == "unplug-attached-leaks" {
		// The owner's unplug of a VIF still attached (as a cleanup
		// does) forgets its host device.
		inst, _ := b.InstanceOf(v.ID)
		if _, attached := b.Attached()[v.ID]; attached && inst == id {
			d, _ := network.DeviceNames(v.ID)
			defer b.AddHostDevice(d.Tap)
		}
	}
	if b.mode == "unplug-deletes-by-name" {
		for port, inst := range b.sameName(v) {
			_ = b.Recorder.Unplug(ctx, inst, network.VIF{ID: port})
		}
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
		// Only the check after the cleanups sees it: the subtest's own
		// steps detach before they unplug.
		"unplug-attached-leaks": "DeviceConflict",
		// Drivers that delete by name, not by owner.
		"plug-deletes-by-name":      "NameClashAcrossInstances",
		"plug-takes-foreign-device": "ForeignDevice",
		"unplug-deletes-by-name":    "UnplugNeverPluggedNextToPlugged",
		"detach-deletes-by-name":    "RollbackNextToLiveInstance",
	})
}
