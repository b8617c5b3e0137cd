// Package svcport gives a network a service namespace, as Neutron's DHCP
// agent gives each network a qdhcp namespace: a named network namespace
// with one port on the network, plugged and attached by the network's own
// VIF driver (so it works on every kind of network the drivers plug: a
// Linux bridge, Open vSwitch hybrid or direct), holding the service's
// addresses. A network's DHCP server (package dhcp) and its metadata
// listener (package metadata) run there, reachable by the instances on
// the network and by nothing else: the instances never reach the host's
// own namespace through it, and networks with overlapping subnets each
// have their own.
//
// [Ensure] makes the namespace (loopback up, router advertisements and
// duplicate address detection off, so the service addresses work at
// once), plugs the port and attaches it as [IfName] with the port's
// addresses, and with [Port] Metadata also 169.254.169.254/32. It is
// idempotent. [Remove] detaches and unplugs the port and deletes the
// namespace; what is gone already is no error.
package svcport
