// Package dhcp runs a network's DHCP server as Neutron's DHCP agent does:
// one dnsmasq per network, on the host side of the network (in its
// service namespace when one is used), with a static host entry (MAC →
// fixed IP) for every port and no dynamic pool, and router advertisements
// for IPv6 subnets.
//
// A [Config] names the server's directory, the namespace and the
// interface dnsmasq serves (which holds the server's address in every
// served subnet, Neutron's DHCP port), and the subnets with their
// [Mode]: DHCPv4 ([ModeDHCP]: the gateway, DNS servers, host routes as
// classless static routes, the MTU, and optionally a route to the metadata
// service, as Neutron's isolated metadata pushes it), SLAAC ([ModeSLAAC]:
// advertisements with the autonomous flag, the instance makes its EUI-64
// address, which is the address Neutron gives such a port), stateful
// DHCPv6 ([ModeDHCPv6Stateful]: the managed flag and a DHCPv6 lease per
// host) and stateless DHCPv6 ([ModeDHCPv6Stateless]: SLAAC with DHCPv6
// for the DNS servers). The advertisements carry the prefix and the MTU
// with a router lifetime of zero: the server is not the subnet's router,
// so an instance's IPv6 default route comes from the router, not from it.
//
// [Start] starts dnsmasq (Debian package dnsmasq-base) detached, so that
// it outlives the program that started it, as a network outlives a
// command-line tool; [Open] takes a handle on a server by its directory
// from any program. [Server.SetHosts], [Server.AddHost] and
// [Server.RemoveHost] rewrite the hosts file and make dnsmasq re-read it
// (SIGHUP); [PortHook] does so as ports come and go (its methods are the
// Docker backend's port observer). A lease the hosts no longer justify (a
// removed port's, or one whose address went to another port) is dropped
// with a restart, as Neutron's agent releases such leases: dnsmasq would
// keep it for its lease time and not give the address to its new port. [Server.Stop] ends the process it
// started, found by its PID file and checked to be dnsmasq with the
// directory's configuration (a reused PID is never signalled), and never
// any other dnsmasq of the host. [Server.Leases] reads the lease file.
//
// dnsmasq drops its privileges to nobody after it started and re-reads
// the hosts file as that user, so the server's directory must be
// searchable by others (Start checks it). DNS is off (port 0).
//
// The configuration types build on every OS; the server runs on Linux.
package dhcp
