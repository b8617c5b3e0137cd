// Package secgroup enforces security groups, as Neutron models them, on
// the ports that the VIF drivers plug on Linux bridges (the linuxbridge
// and novanetwork drivers, and the per-port bridge of an Open vSwitch
// hybrid plug). It is a host-wide service a compute agent drives, like
// Nova's firewall driver; it is not part of hypervisor.Driver.
//
// A [Group] holds [Rule]s (direction, ethertype, protocol, port range or
// ICMP type and code, remote CIDR or remote group). A [Port] is in any
// number of groups; their rules add up. The [Firewall] drops what no
// ingress rule admits, drops egress no egress rule admits (Neutron's default
// group, [DefaultRules], admits all egress), and admits the replies and
// related packets of admitted connections both ways (stateful). Each port
// may send only from its MAC and fixed IPs (and its IPv6 link-local
// address); DHCP, DHCPv6 and IPv6 neighbour discovery and MLD work
// whatever the rules; a port may not act as a DHCP server or send router
// advertisements.
//
// # Kernel layout (nf_tables, through google/nftables)
//
// Three tables named [TableName]:
//   - ip and ip6: a base chain on the forward hook jumps to "egress" and
//     then "ingress", which dispatch each bridged packet with the physdev
//     match (xtables compat) on its input port to the port's "o-<port>"
//     chain and on its output port to "i-<port>" (the port's chains are
//     versioned, "o<n>-<port>" and "i<n>-<port>" after n rule updates; see
//     Atomicity). The dispatch rules goto the port chains, so that the
//     "return" that ends an admitted packet's o- chain leaves the dispatch
//     chain: the receiving port's i- chain decides next. Under br_netfilter the
//     IPv4/IPv6 hooks see the bridge, not the port, as input and output
//     device (iifname is the bridge; meta ibrname is refused outside the
//     bridge family), so physdev is the match that sees bridge ports, as in
//     Neutron's hybrid iptables firewall; compat matches exist in the ip and
//     ip6 families only, hence two tables. Port chains start with
//     "ct state established,related" (conntrack is the IPv4/IPv6 one; see
//     below for bridge-family conntrack), hold the flattened rules of
//     the port's groups and end with drop. Each group has an address set
//     "rg-<group>" per family, holding its ports' fixed IPs, which
//     remote-group rules look up: a membership change changes set elements,
//     not rules.
//   - bridge: a prerouting base chain dispatches with a verdict map on the
//     input port to "s-<port>", the stateless anti-spoofing chain (Ethernet
//     source, IPv4/IPv6 source, ARP sender; other ethertypes dropped).
//
// # Bridge netfilter and bridge-family conntrack
//
// The port chains see bridged packets only through br_netfilter with
// net.bridge.bridge-nf-call-iptables and -ip6tables on. Before every
// change that leaves ports to filter, the Firewall checks both switches in
// its namespace and turns them on, loading br_netfilter with modprobe
// where the kernel has it as a module (Debian's and most distributions'
// kernels: there it is loaded only by whoever needs it first, such as
// Docker's bridge network, and the switches of a new namespace may be
// off), as Neutron's agents do; a kernel without it is a
// [*network.KernelFeatureError]. Without this step every port would be
// silently unfiltered on a host where nothing else had loaded it.
//
// Kernels that have nf_conntrack_bridge (bridge-family connection
// tracking, a module on Debian's kernels; this project's CI kernel lacks
// it) behave the same: when it is loaded, a bridged packet gets its
// conntrack entry in the bridge family's prerouting hook, and the IPv4/IPv6
// hooks that br_netfilter runs afterwards reuse it, so the port chains'
// "ct state established,related" sees the same states, and the stateless
// bridge chain (which never asks for conntrack state) is unchanged. The
// kernel lane (scripts/kernel-lane.sh) runs this package's tests on a
// stock Debian kernel twice, the second time with nf_conntrack_bridge
// loaded.
//
// # Atomicity
//
// Every call is one netlink batch, committed by the kernel as one
// transaction: it applies fully or not at all, and packets see the rules
// before or after it, never half of them. Updates rewrite only the chains
// and sets that change.
//
// On this kernel, a transaction that removes anything (a rule, a chain, a
// set element) waits for an RCU grace period, several times the cost of
// one that only adds. So a change of a port's rules adds: it builds the
// port's next version of chains in full and inserts dispatch rules to
// them before the old ones, which become unreachable, all in one
// transaction. A second transaction, run in the background just after
// (see [WithCleanupDelay], [Firewall.Settle]), deletes the unreachable
// chains and their dispatch rules; a change that removes something anyway
// deletes them in its own transaction. Unreachable chains never decide a
// packet. Connection tracking is untouched, so established
// connections still admitted by the new rules keep flowing (and, as in
// Neutron without conntrack cleanup, established connections stay up even
// when a rule that admitted them is removed). Bad input is refused before
// anything is sent.
//
// # Idempotency and restarts
//
// Applying a state the Firewall already holds sends nothing. RemovePort and
// DeleteGroup of what is gone succeed; the tables go with the last port.
// A new Firewall owns the tables: its first change, or [Firewall.Sync],
// rebuilds them from its own state, removing leftovers (unreachable
// chains of an earlier process included). After an agent
// restart, call Sync with every port and group first.
//
// # Errors
//
// [ErrInvalidRule], [ErrUnknownGroup], [ErrGroupInUse], [ErrInvalidPort]
// (also network.ErrInvalidVIF), [ErrPortNotPlugged], and
// [ErrNotEnforceable] (also errors.ErrUnsupported) for an Open vSwitch port
// plugged without hybrid plug: there is no Linux bridge to filter on, so
// [PortFromVIF] refuses it rather than leave it unfiltered.
//
// # Host namespace and concurrency
//
// [WithHostNetNS] puts the tables in another network namespace than the
// process's own (tests use a private one). A Firewall is safe for concurrent
// use; one lock, host-wide and separate from any per-instance lock,
// serialises its changes. Use one Firewall per host namespace.
package secgroup
