// Package ovs is the Open vSwitch VIF driver: it plugs VIFs of type
// [network.VIFTypeOVS] on an integration bridge (br-int) the way Nova and
// os-vif do, so that a Neutron Open vSwitch agent binds them.
//
//   - Hybrid plug (VIF.HybridPlug): a per-port Linux bridge qbrX (STP off,
//     so ports forward at once), a veth qvbX/qvoX with qvbX on qbrX and
//     transmit checksum offload off on qvbX, qvoX on the integration bridge;
//     Attach adds a veth tapX/ethN with tapX on qbrX and ethN in the
//     instance's namespace.
//   - Direct plug: a veth tapX/nsX with tapX on the integration bridge and
//     nsX parked in the host namespace until Attach moves it in as ethN
//     (transmit checksum offload off on it).
//
// X is the port ID's start ([network.DeviceNames]). The port is added and
// its external-ids (iface-id, iface-status, attached-mac, vm-uuid, and
// created-by=dockervisor, the owner mark) are set in one ovs-vsctl
// transaction; a port whose device Open vSwitch cannot open (ofport -1) is
// [ErrPortFailed] and is rolled back. ovs-vsctl runs with --timeout through
// a [Runner] ([Vsctl]; tests inject a recording one with [WithRunner]).
// Reads of an interface (before a plug, and in Unplug) skip ovs-vsctl: they
// are one OVSDB JSON-RPC select (RFC 7047) on the same database socket,
// under a millisecond where an ovs-vsctl run costs ten or more.
// Open vSwitch not answering is [ErrUnavailable], which is also
// [network.ErrUnavailable].
//
// # Datapaths
//
// The driver works with both of Open vSwitch's datapaths; it does not ask
// which one the integration bridge uses, and it plugs the same devices in
// the same order on both.
//
// The userspace datapath (datapath_type=netdev) is what runs where the
// kernel has no Open vSwitch module, as on this project's CI kernel. Two
// facts of it shape the driver: it reads and writes port devices through
// packet sockets without completing checksums, so TCP needs transmit
// checksum offload off on the veth end that sends into the datapath (qvbX,
// and a direct port's guest end); and it keeps a port's old device open
// when a device of the same name reappears, so a port whose device was
// recreated is deleted and added again in two transactions (a direct port
// after the instance's namespace died, say).
//
// The kernel datapath (datapath_type=system, module openvswitch; Debian's
// and most distributions' kernels) needs neither: packets stay in the
// kernel, which completes checksums itself, and the kernel removes a port's
// vport when its device goes away. The driver still turns transmit
// checksum offload off (the sender then computes its checksums in software,
// which costs a little CPU and changes nothing on the wire) and still
// re-adds a recreated port in two transactions (which works the same).
// Both are proven with real packets on the kernel datapath by the kernel
// lane (scripts/kernel-lane.sh): hybrid and direct ports, IPv4 and IPv6,
// TCP, and security groups on hybrid ports (package secgroup).
//
// # Host namespace
//
// [WithHostNetNS] puts the host side (qbr, qvb, qvo, tap) in a given
// network namespace. Both datapaths open port devices by name in
// ovs-vswitchd's own namespace (the kernel keeps one datapath per network
// namespace), so ovs-vswitchd must run in that namespace too (ovsdb-server
// and ovs-vsctl can run anywhere: they talk over a unix socket). The tests
// run a private ovs-vswitchd inside a private namespace this way; see
// internal/testenv.
//
// # Idempotency and ownership
//
// Plug, Unplug and Detach are idempotent. Every Linux device the driver
// creates (qbrX, qvbX, qvoX, tapX and the parked nsX) carries the owner
// mark "dockervisor:ovs:<instance ID>:<port ID>" as its interface alias
// ([network.DeviceOwner]), set before the device gets its name, and every
// Open vSwitch port it adds carries created-by=dockervisor with the
// instance (vm-uuid) and port (iface-id). A device or port is the VIF's
// own only with the mark of its instance and port (or, for devices an
// earlier version created, the alias "dockervisor:<port ID>", with the
// parked nsX recognised as its tap's peer). Plug checks every name of the
// VIF's layout and its port before it creates anything: one that is not
// the VIF's own (another instance's, whose port ID starts the same; a
// device or port someone else made) is [network.ErrDeviceConflict] and is
// left as it is. The host side outlives a stopped instance, so a clash
// with a stopped instance's VIF is refused too. Attach, Detach and Unplug
// touch only the VIF's own devices and port; qbrX goes only once no port
// is left on it. The integration bridge is never created or deleted, and
// a failed Plug or Attach removes what that call created.
package ovs
