package linkutil

// LegacyMark is the interface alias that earlier versions gave the bridges
// and VLAN devices the bridge drivers created, before marks named their
// driver (see network.DeviceOwner). The bridge drivers still take a device
// with it for one they created, so that an upgraded host's bridges are
// removed once empty.
const LegacyMark = "dockervisor"

// LegacyPortMark is the interface alias that earlier versions of the Open
// vSwitch driver gave the devices of the port portID, before marks named
// the instance. It names the full port ID, so the driver still takes a
// device with it for the port's own.
func LegacyPortMark(portID string) string { return "dockervisor:" + portID }
