package network

import (
	"fmt"
)

// MaxDeviceNameLen is the longest network device name Linux accepts
// (IFNAMSIZ minus the terminating NUL).
const MaxDeviceNameLen = 15

// PortIDPrefixLen is how many leading characters of a port ID go into the
// host device names, as in Nova ("tap" + 11 characters = 14).
const PortIDPrefixLen = 11

// Devices are the host device names derived from one port ID, with Nova's
// prefixes. Every name is at most 14 characters long.
type Devices struct {
	// Tap is the host end of the instance's veth ("tap" + port ID start).
	Tap string
	// Bridge is the per-port Linux bridge of an OVS hybrid plug ("qbr…").
	Bridge string
	// VethBridge is the end of the hybrid veth pair on the per-port bridge
	// ("qvb…").
	VethBridge string
	// VethOVS is the end of the hybrid veth pair on the integration bridge
	// ("qvo…").
	VethOVS string
	// Guest is the guest end of the instance's veth while it is still in
	// the host namespace ("ns…"); inside the instance it is renamed ethN.
	Guest string
}

// DeviceNames returns the host device names of the port portID: Nova's
// prefixes tap, qbr, qvb, qvo (and ns for the guest end) followed by the
// first [PortIDPrefixLen] characters of the port ID. It is a pure function.
//
// The part of the port ID that is used must be made of ASCII letters,
// digits, '-', '_' and '.', so that every name is a valid Linux device name
// (no '/', ':', '%' or white space); otherwise DeviceNames returns an error
// wrapping [ErrInvalidVIF]. An empty port ID is invalid too.
//
// # Name clashes
//
// The names keep only the port ID's start, so two ports whose IDs share
// their first [PortIDPrefixLen] characters get the same names. Nova names
// devices this way too ("tap" + the port ID, cut to 14 characters, in
// nova.network.model and os-vif) and relies on Neutron's port IDs being
// random UUIDs, whose first 11 characters hold 40 random bits; it has no
// check: libvirt fails to start the second guest whose tap name exists,
// and os-vif's hybrid plug deletes a veth of the same name before it
// creates its own and unplugs by name, taking the other port's devices.
//
// Here two ports of one instance with clashing names are
// [ErrInvalidVIF] ([ValidateVIFs]); across instances, the drivers give every
// device they create an owner mark ([DeviceOwner]) and refuse, with
// [ErrDeviceConflict] and before creating anything, a VIF whose names are
// taken by a device that is not that VIF's own: another instance's, or a
// device someone else made. The Docker backend also refuses, up front, a
// VIF whose names a VIF of another of its instances holds in its records,
// running or stopped (a stopped instance's tap is gone from the host until
// its next start). The port that had the names first keeps its devices
// and its traffic; the unplug of the refused VIF (a rollback) finds no
// device of its own and leaves the other port's alone.
func DeviceNames(portID string) (Devices, error) {
	if portID == "" {
		return Devices{}, fmt.Errorf("%w: empty port ID", ErrInvalidVIF)
	}
	p := portID
	if len(p) > PortIDPrefixLen {
		p = p[:PortIDPrefixLen]
	}
	for i := 0; i < len(p); i++ {
		if !nameByte(p[i]) {
			return Devices{}, fmt.Errorf("%w: port ID %q: character %q cannot be part of a device name", ErrInvalidVIF, portID, p[i])
		}
	}
	return Devices{
		Tap:        "tap" + p,
		Bridge:     "qbr" + p,
		VethBridge: "qvb" + p,
		VethOVS:    "qvo" + p,
		Guest:      "ns" + p,
	}, nil
}

// ValidateDeviceName checks that name is a device name Linux accepts and
// that the drivers can use: 1 to [MaxDeviceNameLen] bytes, not "." or "..",
// and no '/', ':', '%', white space or control characters. A name that is too
// long wraps [ErrDeviceNameTooLong]; other faults wrap [ErrInvalidVIF].
func ValidateDeviceName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%w: empty device name", ErrInvalidVIF)
	case len(name) > MaxDeviceNameLen:
		return fmt.Errorf("%w: %q is %d bytes, the limit is %d", ErrDeviceNameTooLong, name, len(name), MaxDeviceNameLen)
	case name == "." || name == "..":
		return fmt.Errorf("%w: device name %q", ErrInvalidVIF, name)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c <= ' ' || c >= 0x7f || c == '/' || c == ':' || c == '%' {
			return fmt.Errorf("%w: device name %q: character %q is not allowed", ErrInvalidVIF, name, c)
		}
	}
	return nil
}

func nameByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.'
}
