package network

import "context"

// Target is where [VIFDriver.Attach] puts the guest end of a VIF: an
// instance's network namespace, named by a path the driver opens once and
// holds for the whole call (such as "/proc/<pid>/ns/net"; a PID alone can
// be reused).
type Target struct {
	// NetNS is the path of the instance's network namespace.
	NetNS string `json:"netns"`
	// IfName is the guest device name, such as "eth0".
	IfName string `json:"ifname"`
	// DefaultRouteV4 and DefaultRouteV6 install the default route of that
	// address family through this VIF's gateway. A backend sets each on
	// exactly one VIF (the first with a gateway of that family), so that an
	// instance has one default route per family.
	DefaultRouteV4 bool `json:"default_route_v4,omitempty"`
	DefaultRouteV6 bool `json:"default_route_v6,omitempty"`
}

// VIFDriver plugs the host side of VIFs and attaches their guest side into
// an instance's network namespace.
//
// Plug and Unplug work on the host side only (bridges, veth ends, Open
// vSwitch ports) and outlive the instance's process: the host side stays
// plugged while the instance is stopped. Attach and Detach work on one
// running process's namespace, so a backend calls Attach after every start.
//
// Plug and Unplug are idempotent: plugging twice is plugging once, and
// unplugging what is gone succeeds. A failed Plug or Attach undoes what
// that call did.
//
// Every host device a driver creates carries the owner mark of the driver,
// the instance and the port ([DeviceOwner]), and no call deletes, moves or
// reconfigures a device that does not carry the mark the call would have
// given it. A device of a name a VIF needs that is someone else's —
// another instance's port whose ID starts the same ([DeviceNames]), a
// device an operator made — is [ErrDeviceConflict] for Plug (before it
// creates anything) and Attach, and is left alone by Detach and Unplug,
// which then succeed.
type VIFDriver interface {
	// Plug creates the host side of vif for the instance instanceID.
	Plug(ctx context.Context, instanceID string, vif VIF) error
	// Attach creates the guest end of vif inside target's namespace,
	// connects it to the host side, and configures its name, MAC, MTU,
	// addresses and routes. A gone namespace is [ErrNamespaceGone].
	Attach(ctx context.Context, instanceID string, vif VIF, target Target) error
	// Detach removes the guest end of vif from target's namespace. A gone
	// namespace or device is success.
	Detach(ctx context.Context, instanceID string, vif VIF, target Target) error
	// Unplug removes the host side of vif that Plug created.
	Unplug(ctx context.Context, instanceID string, vif VIF) error
}
