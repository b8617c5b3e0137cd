package lab

import (
	"context"
	"errors"
	"slices"
	"sync"

	"github.com/dockervisor/dockervisor/network"
	"github.com/dockervisor/dockervisor/network/linuxbridge"
)

// VIFRouter is the network.VIFDriver a Driver is given when labs are used:
// the VIFs of a lab's instance are plugged by a Linux bridge driver in that
// lab's host namespace (found through the labs' state files), and the VIFs
// of any other instance by the fallback driver. Every process that drives
// a lab's instances (a start re-attaches their VIFs) uses one.
type VIFRouter struct {
	stateDir string
	fallback network.VIFDriver

	mu      sync.Mutex
	drivers map[string]*linuxbridge.Driver // by namespace name
}

var _ network.VIFDriver = (*VIFRouter)(nil)

// NewVIFRouter returns a VIFRouter over the lab state files in stateDir.
// fallback may be nil: then a VIF of an instance outside every lab is
// network.ErrUnsupportedVIFType.
func NewVIFRouter(stateDir string, fallback network.VIFDriver) *VIFRouter {
	return &VIFRouter{stateDir: stateDir, fallback: fallback, drivers: map[string]*linuxbridge.Driver{}}
}

func (r *VIFRouter) driverFor(instanceID string) (network.VIFDriver, error) {
	names, err := ListStates(r.stateDir)
	if err != nil {
		return nil, err
	}
	for _, n := range names {
		st, _, err := LoadState(r.stateDir, n)
		if err != nil || st.Netns == "" || !slices.Contains(st.Instances, instanceID) {
			continue
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		if d, ok := r.drivers[st.Netns]; ok {
			return d, nil
		}
		d, err := linuxbridge.New(linuxbridge.WithHostNetNS("/run/netns/" + st.Netns))
		if err != nil {
			return nil, err
		}
		r.drivers[st.Netns] = d
		return d, nil
	}
	if r.fallback == nil {
		return nil, errors.Join(network.ErrUnsupportedVIFType, errors.New("lab: instance "+instanceID+" is in no lab and no VIF driver is configured for it"))
	}
	return r.fallback, nil
}

// Plug implements network.VIFDriver.
func (r *VIFRouter) Plug(ctx context.Context, instanceID string, vif network.VIF) error {
	d, err := r.driverFor(instanceID)
	if err != nil {
		return err
	}
	return d.Plug(ctx, instanceID, vif)
}

// Attach implements network.VIFDriver.
func (r *VIFRouter) Attach(ctx context.Context, instanceID string, vif network.VIF, target network.Target) error {
	d, err := r.driverFor(instanceID)
	if err != nil {
		return err
	}
	return d.Attach(ctx, instanceID, vif, target)
}

// Detach implements network.VIFDriver.
func (r *VIFRouter) Detach(ctx context.Context, instanceID string, vif network.VIF, target network.Target) error {
	d, err := r.driverFor(instanceID)
	if err != nil {
		return err
	}
	return d.Detach(ctx, instanceID, vif, target)
}

// Unplug implements network.VIFDriver.
func (r *VIFRouter) Unplug(ctx context.Context, instanceID string, vif network.VIF) error {
	d, err := r.driverFor(instanceID)
	if err != nil {
		return err
	}
	return d.Unplug(ctx, instanceID, vif)
}

// Close closes the Linux bridge drivers the router opened.
func (r *VIFRouter) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	var errs []error
	for k, d := range r.drivers {
		errs = append(errs, d.Close())
		delete(r.drivers, k)
	}
	return errors.Join(errs...)
}
