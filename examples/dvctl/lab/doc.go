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
//	    gateway: 10.77.0.1      # optional: default route through it
//	    mtu: 1500               # optional
//	instances:
//	  web:                      # instance name: its host name; ID is <lab>-<name>
//	    image: test/busybox:1   # store image ID, or engine reference without a store
//	    flavor: {vcpus: 1, memory: 64}   # memory in MiB; 0 or absent: no limit
//	    command: [sleep, "3600"]
//	    env: {ROLE: web}
//	    metadata: {tier: front}
//	    depends_on: [db]        # spawned after db
//	    ports:                  # eth0, eth1… in order
//	      - {network: net0, ip: 10.77.0.11}   # mac: optional, derived otherwise
//	  db:
//	    image: test/busybox:1
//	    command: [sleep, "3600"]
//
// ${NAME} is replaced by the environment variable NAME when Load reads a
// file; other $ signs are left alone.
//
// # Networks
//
// A lab with networks gets its own host network namespace (recorded in the
// state file before it is made); each network is a Linux bridge in it, named
// from a hash of the lab and network names, and each port a VIF of the
// instance's spec, plugged at spawn and re-attached by the Driver on every
// start. A Driver driving lab instances must use a [VIFRouter], which sends
// each instance's VIFs to a Linux bridge driver in its lab's namespace.
// Down destroys the instances (which unplugs their ports) and deletes the
// namespace, bridges and all.
package lab
