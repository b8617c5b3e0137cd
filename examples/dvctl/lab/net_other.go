//go:build !linux

package lab

import (
	"context"
	"fmt"

	"github.com/dockervisor/dockervisor/hypervisor"
	"github.com/dockervisor/dockervisor/network"
)

// errNeedsLinux: a lab's networks (namespaces, bridges, Open vSwitch,
// firewall, floating IPs) live in the host's kernel, which must be Linux.
// Labs without networks work anywhere.
var errNeedsLinux = fmt.Errorf("lab: networks need Linux: %w", hypervisor.ErrNotSupported)

// VIFRouter is the network.VIFDriver a Driver is given when labs are
// used. Without Linux it has no lab networks: it passes every VIF to the
// fallback driver (none: ErrNotSupported).
type VIFRouter struct{ fallback network.VIFDriver }

var _ network.VIFDriver = (*VIFRouter)(nil)

// NewVIFRouter returns a VIFRouter; see the Linux version.
func NewVIFRouter(_ string, fallback network.VIFDriver) *VIFRouter {
	return &VIFRouter{fallback: fallback}
}

func (r *VIFRouter) driver() (network.VIFDriver, error) {
	if r.fallback == nil {
		return nil, errNeedsLinux
	}
	return r.fallback, nil
}

// Plug plugs vif with the fallback driver.
func (r *VIFRouter) Plug(ctx context.Context, instanceID string, vif network.VIF) error {
	d, err := r.driver()
	if err != nil {
		return err
	}
	return d.Plug(ctx, instanceID, vif)
}

// Attach attaches vif with the fallback driver.
func (r *VIFRouter) Attach(ctx context.Context, instanceID string, vif network.VIF, target network.Target) error {
	d, err := r.driver()
	if err != nil {
		return err
	}
	return d.Attach(ctx, instanceID, vif, target)
}

// Detach detaches vif with the fallback driver.
func (r *VIFRouter) Detach(ctx context.Context, instanceID string, vif network.VIF, target network.Target) error {
	d, err := r.driver()
	if err != nil {
		return err
	}
	return d.Detach(ctx, instanceID, vif, target)
}

// Unplug unplugs vif with the fallback driver.
func (r *VIFRouter) Unplug(ctx context.Context, instanceID string, vif network.VIF) error {
	d, err := r.driver()
	if err != nil {
		return err
	}
	return d.Unplug(ctx, instanceID, vif)
}

// PortPlugged has no lab firewall to tell.
func (r *VIFRouter) PortPlugged(context.Context, string, network.VIF) error { return nil }

// PortUnplugging has no lab firewall to tell.
func (r *VIFRouter) PortUnplugging(context.Context, string, network.VIF) error { return nil }

// Close does nothing.
func (r *VIFRouter) Close() error { return nil }

func ensureNetnsCreated(string) (bool, error) { return false, errNeedsLinux }

func upOVS(_ context.Context, f *File, st *State, _ string, _ func(Action)) error {
	if f.HasOVS() || st.OVSDir != "" {
		return errNeedsLinux
	}
	return nil
}

func upNetwork(_ context.Context, f *File, st *State, _ *VIFRouter, _ bool, _ func(Action)) error {
	if f.HasNetworks() || st.Netns != "" {
		return errNeedsLinux
	}
	return nil
}

func downNetwork(_ context.Context, st *State, _ Options, _ func(Action)) error {
	if st.Netns != "" || st.ExtNetns != "" || st.OVSDir != "" {
		return errNeedsLinux
	}
	return nil
}

// NetStatus reports the network side of lab name: without Linux, what its
// state file says.
func NetStatus(_ context.Context, stateDir, name string) (NetworkStatus, error) {
	st, _, err := LoadState(stateDir, name)
	if err != nil {
		return NetworkStatus{}, err
	}
	return NetworkStatus{Netns: st.Netns, ExtNetns: st.ExtNetns, OVSDir: st.OVSDir, FilteredPorts: len(st.Ports)}, nil
}

func upServices(_ context.Context, f *File, st *State, _ *VIFRouter, _ Options, _ func(Action)) error {
	if f.HasNetworks() || len(st.Services) > 0 || st.MetadataDir != "" {
		return errNeedsLinux
	}
	return nil
}

func downServices(_ context.Context, st *State, _ Options, _ func(Action)) error {
	if len(st.Services) > 0 || st.MetadataDir != "" {
		return errNeedsLinux
	}
	return nil
}

// ServeMetadata needs a lab's service namespaces, which need Linux.
func ServeMetadata(context.Context, string) error { return errNeedsLinux }
