package docker

import (
	"context"

	"github.com/dockervisor/dockervisor/network"
)

// PlugVIFs returns ErrNotSupported: VIF drivers are not wired yet.
func (d *Driver) PlugVIFs(ctx context.Context, id string, vifs []network.VIF) error {
	return opErr("plug-vifs", id, notSupported("VIF plugging"))
}

// UnplugVIFs returns ErrNotSupported: VIF drivers are not wired yet.
func (d *Driver) UnplugVIFs(ctx context.Context, id string, vifs []network.VIF) error {
	return opErr("unplug-vifs", id, notSupported("VIF plugging"))
}

// AttachInterface returns ErrNotSupported: VIF drivers are not wired yet.
func (d *Driver) AttachInterface(ctx context.Context, id string, vif network.VIF) error {
	return opErr("attach-interface", id, notSupported("interface hot-plug"))
}

// DetachInterface returns ErrNotSupported: VIF drivers are not wired yet.
func (d *Driver) DetachInterface(ctx context.Context, id string, vif network.VIF) error {
	return opErr("detach-interface", id, notSupported("interface hot-plug"))
}
