package hypervisortest

import (
	"context"
	"fmt"
	"slices"

	"github.com/dockervisor/dockervisor/hypervisor"
	"github.com/dockervisor/dockervisor/network"
)

// VIFs returns the VIFs plugged into an instance, in plug order.
func (f *Fake) VIFs(id string) ([]network.VIF, error) {
	var out []network.VIF
	err := f.with(context.Background(), "vifs", id, func(fi *fakeInstance) error {
		out = slices.Clone(fi.vifs)
		return nil
	})
	return out, err
}

func validateVIF(vif network.VIF) error {
	if err := vif.Validate(); err != nil {
		return fmt.Errorf("%w: %w", hypervisor.ErrInvalidArgument, err)
	}
	return nil
}

// checkPlug checks that fi's VIFs with vifs plugged are still a valid
// set (no two with one MAC, say).
func (fi *fakeInstance) checkPlug(vifs ...network.VIF) error {
	after := &fakeInstance{vifs: slices.Clone(fi.vifs)}
	for _, v := range vifs {
		after.plug(v)
	}
	if err := network.ValidateVIFs(after.vifs); err != nil {
		return fmt.Errorf("%w: %w", hypervisor.ErrInvalidArgument, err)
	}
	return nil
}

// plug records vif, replacing a plugged VIF with the same ID.
func (fi *fakeInstance) plug(vif network.VIF) {
	if i := slices.IndexFunc(fi.vifs, func(v network.VIF) bool { return v.ID == vif.ID }); i >= 0 {
		fi.vifs[i] = vif
		return
	}
	fi.vifs = append(fi.vifs, vif)
}

func (fi *fakeInstance) unplug(id string) {
	fi.vifs = slices.DeleteFunc(fi.vifs, func(v network.VIF) bool { return v.ID == id })
}

// PlugVIFs records vifs as plugged into the instance, in any state.
// Plugging a VIF ID again replaces it. Invalid VIFs are
// ErrInvalidArgument, and nothing is plugged then.
func (f *Fake) PlugVIFs(ctx context.Context, id string, vifs []network.VIF) error {
	const op = "plug-vifs"
	for _, v := range vifs {
		if err := validateVIF(v); err != nil {
			return hypervisor.WrapOp(op, id, err)
		}
	}
	return f.with(ctx, op, id, func(fi *fakeInstance) error {
		if err := fi.checkPlug(vifs...); err != nil {
			return err
		}
		for _, v := range vifs {
			fi.plug(v)
		}
		return nil
	})
}

// UnplugVIFs forgets vifs. VIFs that are not plugged are ignored.
func (f *Fake) UnplugVIFs(ctx context.Context, id string, vifs []network.VIF) error {
	return f.with(ctx, "unplug-vifs", id, func(fi *fakeInstance) error {
		for _, v := range vifs {
			fi.unplug(v.ID)
		}
		return nil
	})
}

// AttachInterface plugs vif into a running instance.
func (f *Fake) AttachInterface(ctx context.Context, id string, vif network.VIF) error {
	const op = "attach-interface"
	if err := validateVIF(vif); err != nil {
		return hypervisor.WrapOp(op, id, err)
	}
	return f.with(ctx, op, id, func(fi *fakeInstance) error {
		if err := hypervisor.CheckState(op, id, fi.inst.State, hypervisor.StateRunning); err != nil {
			return err
		}
		if err := fi.checkPlug(vif); err != nil {
			return err
		}
		fi.plug(vif)
		return nil
	})
}

// DetachInterface unplugs vif from an instance in any state; nil if it is
// not plugged.
func (f *Fake) DetachInterface(ctx context.Context, id string, vif network.VIF) error {
	return f.with(ctx, "detach-interface", id, func(fi *fakeInstance) error {
		fi.unplug(vif.ID)
		return nil
	})
}
