// Package docker is the Docker backend of [hypervisor.Driver]: it runs each
// instance as a container on a Docker engine, the way a hypervisor runs a
// virtual machine.
//
// # Instances
//
// An instance is a container named prefix+ID (see [WithNamePrefix]) with
// networking off, its hostname set from the spec, its flavor mapped to CPU
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
// engine restart stopped. [Driver.Resize] uses the engine's update call
// and records the new flavor. The event stream names the operation behind
// each event from an in-memory log of the driver's operations, keeps the
// driver's own events (resize, reboot, soft delete, restore) in a journal
// in the state directory for replay, and bounds what it queues for a slow
// consumer ([WithEventBuffer]). [Driver.AllInstanceStats] reads the
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
package docker
