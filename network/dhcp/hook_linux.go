package dhcp

import (
	"context"
	"fmt"

	"github.com/dockervisor/dockervisor/network"
)

// PortHook keeps the hosts of DHCP servers in step with the ports a
// backend plugs: its methods are the Docker backend's port observer
// (docker.WithPortObserver), so a port's host entry is in its network's
// server before the instance is attached to the port, and goes before the
// port is unplugged.
type PortHook struct {
	lookup func(vif network.VIF) (*Server, bool)
}

// NewPortHook returns a PortHook that finds the server of a VIF's network
// with lookup (by vif.NetworkID, say); a VIF whose network has no server
// is left alone.
func NewPortHook(lookup func(vif network.VIF) (*Server, bool)) *PortHook {
	return &PortHook{lookup: lookup}
}

// PortPlugged adds the VIF's host (its MAC and fixed IPs) to its
// network's server.
func (h *PortHook) PortPlugged(ctx context.Context, instanceID string, vif network.VIF) error {
	s, ok := h.lookup(vif)
	if !ok {
		return nil
	}
	host, ok := HostFor(vif)
	if !ok {
		return nil
	}
	if err := s.AddHost(ctx, host); err != nil {
		return fmt.Errorf("dhcp: port %s of %s: %w", vif.ID, instanceID, err)
	}
	return nil
}

// PortUnplugging removes the VIF's host from its network's server. A port
// the server does not know is no error.
func (h *PortHook) PortUnplugging(ctx context.Context, instanceID string, vif network.VIF) error {
	s, ok := h.lookup(vif)
	if !ok || len(vif.Address) == 0 {
		return nil
	}
	if err := s.RemoveHost(ctx, vif.Address); err != nil {
		return fmt.Errorf("dhcp: port %s of %s: %w", vif.ID, instanceID, err)
	}
	return nil
}
