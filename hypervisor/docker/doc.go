// Package docker is the Docker backend of [hypervisor.Driver]: it runs each
// instance as a container on a Docker engine, the way a hypervisor runs a
// virtual machine.
//
// # Instances
//
// An instance is a container named prefix+ID (see [WithNamePrefix]) without
// an engine network (its VIFs, if any, come from a VIF driver: see
// Networking), its hostname set from the spec, its flavor mapped to CPU
// shares (1024 a vCPU), an optional CFS quota ([hypervisor.InstanceSpec]
// HardCPULimit) and a memory limit without extra swap. The limits are set
// when the container is created and never passed again, so they hold after
// every start, reboot, power cycle and restore.
//
// The spawn-time spec is kept in labels on the container (immutable). The
// mutable state (the soft-deleted mark and whether the driver stopped the
// instance on purpose) is kept in one versioned record per instance, written
// atomically, under a subdirectory of the state directory ([WithStateDir])
// named after the label and name prefixes: drivers with different prefixes
// share an engine and a state directory without touching each other's
// state. A new Driver built on the same engine, prefixes and state
// directory, as after an agent restart, sees every instance exactly as
// before; a record in the unscoped layout of earlier versions
// (<state dir>/<id>.json) is read and moved on the next write.
//
// # OCI runtime
//
// Instances run under the engine's default OCI runtime (runc), or under
// the one [WithRuntime] names, such as crun, which the engine must have
// registered (Spawn fails with [hypervisor.ErrNotSupported] naming the
// engine's runtimes otherwise). Everything the Driver reads of an
// instance in the kernel it reads where the runtime put the container:
// the root of its cgroup namespace, which is the engine's cgroup for the
// container under runc and a sub-cgroup of it under crun with the systemd
// cgroup driver (crun leaves the engine's scope to systemd and puts the
// container, its limits and its freezer one level down; systemd gives
// the scope the instance's CPU weight, where it weighs against the other
// instances). crun refuses hosts with hybrid cgroups (cgroup v1 with the
// unified hierarchy beside it): there a Spawn under it fails with crun's
// reason and leaves nothing.
//
// # Networking
//
// With [WithVIFDriver] (a [network.Dispatcher] composes drivers by VIF
// type) the Driver plugs VIFs: Spawn plugs the host side of
// InstanceSpec.VIFs (step plug-vifs, after recording them), starts the
// instance and attaches each VIF inside its new network namespace
// (/proc/<pid>/ns/net of the started process) as eth0, eth1… in VIF order,
// with one default route per address family (through the first VIF with a
// gateway of that family). The VIFs, with their guest devices, live in the
// instance's durable record, and attaching them is a post-start step
// (attach-vifs), so every start — power-on, both reboots, restore, and a
// start by a new Driver after an agent restart — brings them back; the host
// side stays plugged while the instance is stopped. PlugVIFs and
// AttachInterface add VIFs (as the next free ethN; attached at once when
// the instance has a process, at its next start otherwise), UnplugVIFs
// and DetachInterface remove them, and Destroy unplugs them all; a VIF
// whose unplug fails stays recorded and a second Destroy unplugs it. The
// subnets' DNS servers go into the instance's /etc/resolv.conf, a file
// the Driver owns in its state directory, bind-mounted at create and
// rewritten in place when the VIFs change. IPv6 is turned on in the
// instance's namespace. The engine's network stack does nothing for an
// instance (its container is created with networking disabled: the
// runtime makes the namespace, loopback up, which halves the engine's
// container start); the Driver gives every instance its own /etc/hosts
// with the loopback names, as the engine would. Interface counters of InstanceStats carry the
// VIF's port ID. [WithPortObserver] tells a host-wide service (such as a
// security-group firewall, see secgroup.NewPortHook) about every port
// plugged and unplugged, so a port's rules come and go with the port.
//
// Host devices are named from the port ID's first 11 characters
// (network.DeviceNames), so two ports whose IDs start the same share device
// names. Spawn, PlugVIFs and AttachInterface refuse, before anything is
// created, a VIF whose device names are those of a VIF that another
// instance of the Driver has recorded (running or stopped), and the VIF
// drivers refuse one whose names a device of someone else holds on the
// host: ErrInvalidArgument wrapping network.ErrDeviceConflict. The other
// instance keeps its devices and its traffic, and the rollback of the
// refused call, Destroy and Reconcile touch only devices that carry the
// instance's own owner mark (network.DeviceOwner).
//
// Inside an application instance every address, route and default route
// of its VIFs is configured by the Driver (it has no DHCP client). An OS
// instance configures its network itself, as a VM does: the Driver leaves
// out the subnets whose meta says the guest takes its address (a DHCP
// server, an IPv6 address mode: network.Subnet.Dynamic), so that its DHCP
// client takes the lease from the network's DHCP server (package
// network/dhcp) and the kernel makes its SLAAC address.
//
// VIF errors get hypervisor classes: a malformed VIF, an unknown VIF type
// or a conflicting device is ErrInvalidArgument, a missing kernel feature
// ErrNotSupported, an unreachable switch ErrUnavailable, and an instance
// whose process died during the attach (its namespace is gone)
// ErrInvalidState.
//
// # Start and stop
//
// Every start of an instance (Spawn, PowerOn, both reboots, Restore) goes
// through one start path: record the intent, start the container (never
// passing a host config, so the limits set at create hold), then run the
// post-start steps in order. A failure after the engine started the
// process stops it again and writes back the record from before the call,
// so the driver's view and the engine's agree: a failed Restore leaves the
// instance soft-deleted, a failed PowerOn or reboot leaves it shut down.
// Every stop (PowerOff, SoftDelete, both reboots) goes through one stop
// path, which records the intent before the stop, so the exit reads as a
// shutdown. Destroy removes the container by force. Rollback steps of a
// failed operation run even when the caller's context has ended, each
// bounded by a deadline, so a hung engine cannot make them hang forever.
//
// # Concurrency
//
// Calls on one instance, reads (Info, ConsoleOutput, InstanceStats)
// included, take the instance's lock in arrival order. List and
// HostResources take none. No lock is held across a call to the engine
// except the instance's own.
//
// # Power states
//
// A running container is running, a paused one paused. An exited container
// is shut down when the driver stopped it (PowerOff, SoftDelete, a reboot)
// or it exited with status 0, and crashed otherwise. Info reads CPU time
// and memory from the engine's one-shot statistics: memory in bytes without
// the page cache, as the docker CLI shows it.
//
// # Images
//
// Without an image store the spec's Image is an image reference the engine
// has. With [WithImageStore] it is a store image ID: Spawn streams a missing
// or changed store image into the engine (sha256 verified on the way), tags
// it engine.TagFor(ID), and reuses it while the store image is unchanged; a
// record per store image in the state directory says which data a tag holds.
// Loaded images stay on the engine as a cache; a version replaced by a
// newer one is removed once no instance uses it. A failed fetch leaves no
// image and no tag behind.
//
// # Guest access and boot data
//
// Every container is created with a terminal and an input that stays open
// (a TTY with OpenStdin), so [Driver.AttachConsole] can attach to its main
// process the way one attaches to a VM's serial console; closing the
// console detaches and leaves the instance running. The engine logs a
// terminal's output as one stream; ConsoleOutput turns its "\r\n" line
// ends back into "\n". [Driver.Exec] runs a command through the engine's
// exec API, optionally on its own terminal, and kills it when its context
// ends.
//
// Every instance also gets an OpenStack config drive (package
// configdrive), unless its spec says NoConfigDrive, built from its spec's
// boot data (user-data, SSH keys, admin
// password, injected files, metadata) in the driver's part of the state
// directory (drivers/<scope>/configdrive/<ID>, with the boot data it is
// built from in drivers/<scope>/boot/<ID>.json, mode 0600), and
// bind-mounted read-only at configdrive.SeedDir, where cloud-init's
// ConfigDrive datasource reads it without a block device. The mount is part
// of the container, so it holds after every start; [Driver.UpdateMetadata]
// rebuilds the tree in place. With InstanceSpec.AuthorizedKeysUser the keys
// are also written to that user's ~/.ssh/authorized_keys before the first
// start, for images without cloud-init. With [WithMetadataService] the
// boot data is published to Nova's metadata service (package
// network/metadata, or any [MetadataRegistry]) at spawn, whenever the
// metadata or VIFs change and at every start, and withdrawn at Destroy;
// a failed registration fails the operation, as a failed plug does.
//
// # OS instances
//
// An instance whose spec says [hypervisor.BootOS], or whose image carries
// the [hypervisor.OSImageLabel] label ("io.dockervisor.os=systemd", as
// package osimage's images do), boots an operating system: the image's
// /sbin/init (or the spec's command) runs as PID 1 with tmpfs on /run and
// /run/lock, container=docker in its environment, SIGRTMIN+3 (systemd's
// halt request) as the stop signal and the cgroup file system as systemd
// expects it. It gets no privilege but CAP_NET_ADMIN (its own network
// configuration: a DHCP client, systemd-networkd) and no host namespace,
// product_name=OpenStack Nova in its environment (where cloud-init
// recognises an OpenStack instance, so one without a config drive reads
// the metadata service), and the same limits, hostname, labels, VIFs and
// config drive as any instance: only create (osConfig), a post-start step
// on some hosts and the stop record differ, in osinstance.go. Spawn checks
// the init exists ([hypervisor.ErrNoInit]), asking the engine once per
// image: the answer is kept by image ID.
//
// The instance's limits stay out of its reach on every host:
//   - cgroup v1: the engine's read-only mounts of the instance's
//     controller cgroups, plus the host's controller-less name=systemd
//     hierarchy bound writable for systemd's own cgroups.
//   - cgroup v2 (with the systemd or the cgroupfs cgroup driver): a
//     private cgroup namespace, whose root, the instance's own cgroup, is
//     a delegation boundary (the host mounts cgroup2 with nsdelegate, as
//     systemd does): systemd creates and limits cgroups below it, but
//     writing the instance's own memory.max or cpu.max from inside fails.
//     The mount must be writable. An engine with writable cgroups (Docker
//     28, API 1.48) is asked for it (the writable-cgroups security
//     option). An older local engine (Docker 20.10 to 27) mounts it
//     read-only, where systemd cannot start; the driver then makes the
//     instance's entrypoint a gate, /bin/sh waiting for a flag in the
//     instance's /run before it executes the init as PID 1, and a
//     post-start step, on every start (each start has a new mount
//     namespace), enters the instance's mount namespace, bind-remounts
//     its /sys/fs/cgroup writable (a bind remount changes that one mount,
//     never the cgroup2 superblock shared with the host, which keeps
//     nsdelegate) and creates the flag. That needs /bin/sh in the image
//     and nsdelegate on the host, else Spawn fails with
//     [hypervisor.ErrNotSupported] naming what is missing. A remote
//     engine (TCP) without writable cgroups cannot have its instances'
//     mounts changed: Spawn of an OS instance fails with ErrNotSupported
//     saying so, and Capabilities reports OSInstances false once the
//     Driver has read the engine's facts. On Docker 20.10 systemd prints
//     "Failed to get cgroup ID of cgroup …, ignoring" for its units: that
//     engine's seccomp profile refuses name_to_handle_at (allowed from
//     Docker 24 on), and systemd carries on without the IDs.
//
// A start whose instance's process exits before the start path has
// finished (an init that gives up) fails with an error that carries the
// exit code and the last lines of the console, where the init says why.
//
// PowerOff and a soft reboot are orderly OS shutdowns: the engine sends
// the halt signal and kills after the timeout; [Driver.OSStatus] reports
// how the last one went (orderly, or killed after the timeout).
// [Driver.WaitBooted] waits for the end of the boot (and of cloud-init),
// reporting a degraded system or a cloud-init error as typed errors. The
// console (ConsoleOutput, AttachConsole) shows systemd's boot and shutdown
// messages, as a VM's serial console does.
//
// # Host and instance statistics
//
// HostResources reads the host's /proc and the engine's data-root file
// system when the engine is local (a unix socket), and counts only this
// driver's instances. InstanceStats reads the engine's one-shot statistics
// and the interface counters inside the instance's network namespace.
//
// # Agent operations
//
// The Driver implements [hypervisor.AgentDriver]. Create-only spawns stop
// after the create step, with the record's intent "created". Every record
// carries the intended power state (running after a start, stopped after
// a stop) and a spawn mark written before the container is created and
// cleared when the spawn ends, so that [Driver.Reconcile] (one container
// list, one read of the state directory, a try of each instance's lock)
// can tell half-finished spawns and [Driver.Resume] can bring back what an
// engine restart stopped. Every operation with more than one step also
// keeps an intent journal in the record: when its process dies, a new
// Driver's Reconcile, Resume or any call that takes the instance's turn
// finishes or undoes the operation (see "Crash recovery" in package
// hypervisor), and
// the remove policy of Reconcile removes what no instance owns: the
// set-aside container of a rebuild, committed images of snapshots (their
// tags in snapshot.CommitRepository start with a hash of the driver's
// prefixes), temporary files of killed writes and the guest files of
// instances that are gone. [Driver.Resize] uses the engine's update call
// and records the new flavor. The event stream names the operation behind
// each event from an in-memory log of the driver's operations, keeps the
// driver's own events (resize, reboot, soft delete, restore) in a journal
// in the state directory for replay, and bounds what it queues for a slow
// consumer ([WithEventBuffer]). An exit is reported as an OOM kill when
// the engine reported one, or, for a local engine, when the kernel's log
// (/dev/kmsg, readable by root) names the kill of the instance's process
// or of a process in its cgroup: containerd 1.6 on cgroup v2 (Debian 12's
// Docker 20.10) loses most of its OOM reports. [Driver.AllInstanceStats] reads the
// kernel's cgroup counters of a local engine's containers directly. The
// node UUID of [Driver.HostFacts] is kept in <state dir>/node-uuid.
//
// # Connection
//
// [New] does not dial. The first call that needs the engine pings it with
// API version negotiation; an engine that does not answer, or whose API is
// older than [MinAPIVersion], fails that call with
// [hypervisor.ErrUnavailable], and the next call tries again. TCP endpoints
// can use TLS ([WithTLS]) with server verification on by default.
//
// # Layout
//
// [Driver] is a façade over rooms by concern: unexported types that share
// one core (driver.go: the options, the engine client of client.go, the
// state directory, the per-instance locks and the labels of labels.go)
// and whose methods the Driver promotes. The rooms and their files:
//
//   - lifecycleRoom, spawn and power: spawn.go, start.go, stop.go,
//     power.go, rebuild.go, resize.go, inspect.go;
//   - recordRoom, records and intents: recover.go, reconcile.go,
//     pending.go, intents.go, sweep.go, owner.go (the records themselves
//     are record.go and state.go);
//   - vifRoom, VIFs: vifs.go;
//   - osRoom, OS instances: osinstance.go, bootreport.go, cgroupgate_*.go;
//   - guestRoom, guest access: exec.go, console.go, console_attach.go,
//     configdrive.go;
//   - eventRoom, events and the journal: events.go, journal.go;
//   - hostRoom, the host and statistics: host.go, hostfacts.go,
//     bulkstats*.go;
//   - imageRoom, images and snapshots: image.go, cache.go, snapshot.go.
//
// A room that needs a few things of another sees them through a narrow
// interface (rooms.go). The rooms that use much of another reach it
// through the core: lifecycleRoom, which drives all the others;
// recordRoom, which recovers through lifecycleRoom and vifRoom;
// imageRoom, whose snapshots write records; hostRoom, which lists
// and inspects instances. No type of the package has more than 60 methods (a test of
// internal/repotest keeps it so).
package docker
