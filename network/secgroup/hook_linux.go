package secgroup

import (
	"context"
	"fmt"

	"github.com/dockervisor/dockervisor/network"
)

// GroupsFunc returns the security groups of the port vif of the instance
// instanceID (Neutron's port security groups, which a VIF does not
// carry), and whether the Firewall filters the port at all. A compute
// agent answers from its own view of the ports.
type GroupsFunc func(instanceID string, vif network.VIF) (groups []string, filtered bool)

// PortHook makes a Firewall follow the ports a hypervisor backend plugs:
// PortPlugged filters a port as soon as its host side exists, and
// PortUnplugging removes its filter before the host side goes. It has the
// method set of the Docker backend's PortObserver (docker.WithPortObserver),
// so a port's rules go with the port. VIFs whose network back end filters
// them itself (VIF.PortFilter) and ports the GroupsFunc does not filter are
// left alone.
type PortHook struct {
	fw     *Firewall
	groups GroupsFunc
}

// NewPortHook returns a PortHook applying groups to the ports of fw.
func NewPortHook(fw *Firewall, groups GroupsFunc) *PortHook {
	return &PortHook{fw: fw, groups: groups}
}

// PortPlugged filters the port of vif with the groups the GroupsFunc
// gives: Firewall.ApplyPort. An Open vSwitch VIF plugged without hybrid
// plug cannot be filtered and is ErrNotEnforceable, so that a port the
// agent wants filtered is never left open.
func (h *PortHook) PortPlugged(ctx context.Context, instanceID string, vif network.VIF) error {
	if vif.PortFilter {
		return nil
	}
	groups, filtered := h.groups(instanceID, vif)
	if !filtered {
		return nil
	}
	p, err := PortFromVIF(vif, groups...)
	if err != nil {
		return fmt.Errorf("port %s: %w", vif.ID, err)
	}
	return h.fw.ApplyPort(ctx, p)
}

// PortUnplugging removes the filter of vif's port: Firewall.RemovePort,
// which succeeds for a port the Firewall does not know.
func (h *PortHook) PortUnplugging(ctx context.Context, _ string, vif network.VIF) error {
	return h.fw.RemovePort(ctx, vif.ID)
}
