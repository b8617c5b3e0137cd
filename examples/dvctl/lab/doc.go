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
//	instances:
//	  web:                      # instance name: its host name; ID is <lab>-<name>
//	    image: test/busybox:1   # store image ID, or engine reference without a store
//	    flavor: {vcpus: 1, memory: 64}   # memory in MiB; 0 or absent: no limit
//	    command: [sleep, "3600"]
//	    env: {ROLE: web}
//	    metadata: {tier: front}
//	    depends_on: [db]        # spawned after db
//	  db:
//	    image: test/busybox:1
//	    command: [sleep, "3600"]
//
// See the dvctl documentation for the networking part of the format.
package lab
