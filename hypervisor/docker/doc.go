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
// instance on purpose) is kept in one JSON file per instance in the state
// directory ([WithStateDir]), written atomically. A new Driver built on the
// same engine, prefixes and state directory, as after an agent restart,
// sees every instance exactly as before.
//
// # Power states
//
// A running container is running, a paused one paused. An exited container
// is shut down when the driver stopped it (PowerOff, SoftDelete, a reboot)
// or it exited with status 0, and crashed otherwise. Info reads CPU time
// and memory from the engine's one-shot statistics: memory in bytes without
// the page cache, as the docker CLI shows it.
//
// # Connection
//
// [New] does not dial. The first call that needs the engine pings it with
// API version negotiation; an engine that does not answer, or whose API is
// older than [MinAPIVersion], fails that call with
// [hypervisor.ErrUnavailable], and the next call tries again. TCP endpoints
// can use TLS ([WithTLS]) with server verification on by default.
package docker
