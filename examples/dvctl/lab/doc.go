// Package lab reads lab files — a YAML topology of instances, the networks
// their ports are on, security groups and floating IPs — and brings a lab
// up, shows it, and takes it down through the public dockervisor API.
//
// Up is idempotent and declarative: it creates what is missing, starts what
// is stopped, replaces an instance whose spec in the file changed, removes
// instances of the lab that the file no longer names, and changes nothing
// when the lab is as the file says. It works in dependency order (networks,
// then instances in the order their depends_on gives, each wave in parallel)
// and records every resource in the lab's state file before it creates it,
// so Down removes everything an Up made, even one that failed half-way.
//
// # File format
//
//	name: demo                  # lab name: letters, digits, '-'; prefixes every ID
//	networks:
//	  net0:                     # a Linux bridge in the lab's namespace /run/netns/dvlab-<lab>
//	    cidr: 10.77.0.0/24
//	    gateway: 10.77.0.1      # optional: default route through it (the router, see external)
//	    mtu: 1500               # optional
//	  net1:
//	    type: ovs               # an Open vSwitch bridge of the lab's private switch (default: bridge)
//	    cidr: 10.78.0.0/24
//	    dhcp: true              # a DHCP server and the metadata service (see Services)
//	    dhcp_server: 10.78.0.2  # optional: the DHCP port's address (default: the last host address)
//	security_groups:
//	  web:                      # rules add up; what no rule admits is dropped
//	    - {protocol: icmp}                       # direction ingress and ethertype IPv4 by default
//	    - {protocol: tcp, port: 8080, remote: 10.77.0.0/24}
//	    - {protocol: tcp, port: 8000-8100, remote_group: web}
//	    - {direction: egress}                    # all egress (none: egress dropped too)
//	external:
//	  cidr: 192.0.2.0/24        # the namespace /run/netns/dvlab-<lab>-ext; router at .1
//	floating_ips:
//	  - {ip: 192.0.2.10, instance: web, port: 0}   # 1:1 NAT to web's eth0
//	instances:
//	  web:                      # instance name: its host name; ID is <lab>-<name>
//	    image: test/busybox:1   # store image ID, or engine reference without a store
//	    flavor: {vcpus: 1, memory: 64}   # memory in MiB; 0 or absent: no limit
//	    command: [sleep, "3600"]
//	    env: {ROLE: web}
//	    metadata: {tier: front}
//	    user_data: |            # on the config drive, as ssh_keys
//	      #cloud-config
//	    ssh_keys: ["ssh-ed25519 AAAA... me@host"]
//	    config_drive: false     # no config drive: the metadata service of a network with dhcp instead
//	    depends_on: [db]        # spawned after db
//	    ports:                  # eth0, eth1… in order
//	      - {network: net0, ip: 10.77.0.11, security_groups: [web]}   # mac: optional, derived otherwise
//	  db:
//	    image: test/busybox:1
//	    command: [sleep, "3600"]
//
// ${NAME} is replaced by the environment variable NAME when Load reads a
// file, ${NAME:-DEFAULT} by it or, unset or empty, DEFAULT; other $ signs are
// left alone.
//
// # Networks
//
// A lab with networks gets its own host network namespace (recorded in the
// state file before it is made); each bridge network is a Linux bridge in
// it, named from a hash of the lab and network names, and each port a VIF of
// the instance's spec, plugged at spawn and re-attached by the Driver on
// every start. A lab with ovs networks runs a private Open vSwitch
// (ovsdb-server and ovs-vswitchd, detached, with a run directory under
// /run/dvctl) whose ovs-vswitchd lives in the lab's namespace; each ovs
// network is a bridge of it on the userspace datapath, and its ports are
// plugged hybrid (a per-port Linux bridge between the instance and Open
// vSwitch, where security groups are enforced).
//
// A Driver driving lab instances must use a [VIFRouter] as its VIF driver
// and port observer: it sends each instance's VIFs to the drivers of its
// lab's namespace, and filters a port with security groups as soon as it
// is plugged.
//
// # Services
//
// A network with dhcp gets what Neutron's DHCP agent gives a network: a
// service namespace, dvlab-<lab>-<network>, with a port on the network
// (plugged as the network's instance ports are) holding the DHCP server's
// address; a DHCP server there (dnsmasq, package network/dhcp) with a host
// entry for every port of the file on the network, kept up to date as
// ports are plugged and unplugged; and Nova's metadata service (package
// network/metadata) at 169.254.169.254, answering each instance from its
// fixed IP. The ports' subnets say so as Nova's subnet meta does
// (dhcp_server), so an OS instance's cloud-init takes a DHCP lease, with
// the route to the metadata service the DHCP server pushes; the subnets
// also carry that route as a host route, for instances the Driver
// configures (application instances have no DHCP client). The lab's
// metadata service is a detached process of this program (dvctl lab
// serve-metadata), with its registrations in a run directory under
// /run/dvctl-services, which the Driver reaches through the service's
// control socket: a Driver driving lab instances is given a
// [MetadataRouter] (docker.WithMetadataService). An instance with
// config_drive: false has no config drive and reads its user-data, keys
// and metadata from the service; it needs a port on a network with dhcp.
//
// # Security groups
//
// The groups are enforced with package network/secgroup in the lab's
// namespace (nf_tables, stateful, on the bridge ports). A Firewall keeps its
// state in memory, so the intended state (groups, and every filtered port)
// is in the state file, and each process syncs its Firewall from it before
// its first change; Up syncs it fully after the instances are up, so a
// changed rule applies without touching instances. Ports without groups are
// not filtered.
//
// # External network and floating IPs
//
// With external set, a second namespace, dvlab-<lab>-ext, is the lab's
// outside world and router: it has an interface ext0 on the external subnet
// (the router holds its first address) and, for each bridge network with a
// gateway, a veth with the gateway address whose peer is a port of that
// network's bridge. Traffic between the outside and an instance so crosses
// the bridge as bridged traffic, which the security groups filter. Floating
// IPs are bound on ext0 with package network/floatingip (1:1 NAT); a
// program run in the external namespace (ip netns exec dvlab-<lab>-ext ...)
// reaches an instance through its floating IP.
//
// # Down
//
// Down destroys the instances (which unplugs their ports, removes their
// filters and withdraws their metadata), stops the metadata service and
// the DHCP servers and removes the service namespaces, unbinds the
// floating IPs, removes the firewall's tables, stops
// the lab's Open vSwitch and deletes both namespaces, bridges, router legs
// and all, each step whatever happened to the others, from the state file:
// so it also cleans up after an Up that failed half-way.
package lab
