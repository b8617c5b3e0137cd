// Package hypervisor is the contract between a compute agent and a
// container-as-VM backend: the [Driver] interface, its value types and its
// errors. The Docker backend lives in package hypervisor/docker; an
// in-memory fake and the conformance suite every backend must pass live in
// package hypervisor/hypervisortest.
//
// Instances are addressed by the caller's ID (a Nova instance UUID, say).
// Every method takes a context first and honours it.
//
// # Lifecycle
//
// An instance is in one [State]. The table lists, for each operation, the
// states it is valid in, the state it leads to, and the states in which it
// does nothing and returns nil. In any other state it returns an error
// wrapping [ErrInvalidState] whose chain holds a *[StateError] naming the
// current and the valid states.
//
//	operation    valid in                                  leads to      nil (no-op) in
//	Spawn        (no instance with the ID)                 running       -
//	PowerOff     running, paused                           shutdown      shutdown, crashed, created
//	PowerOn      shutdown, crashed, created                running       running
//	Pause        running                                   paused        paused
//	Unpause      paused                                    running       running
//	Reboot soft  running                                   running       -
//	Reboot hard  running, paused, shutdown, crashed,       running       -
//	             created
//	SoftDelete   running, paused, shutdown, crashed,       soft-deleted  soft-deleted
//	             created
//	Restore      soft-deleted                              running       -
//	Snapshot     running, paused, shutdown, crashed        (unchanged)   -
//	Exec         running                                   (unchanged)   -
//	AttachConsole running                                  (unchanged)   -
//	Rebuild      running, shutdown, crashed, created       running if it -
//	                                                       ran, else
//	                                                       shutdown
//	Destroy      every state                               (gone)        no instance
//
// Info, List, ConsoleOutput, InstanceStats and UpdateMetadata are valid in
// every state. A refused Exec or AttachConsole leaves the instance
// untouched. A process that exits by itself with a non-zero status, or is killed without
// the driver asking, leaves the instance crashed; one that exits with status
// 0 leaves it shut down.
//
// Every transition that starts the instance's process (Spawn, PowerOn,
// Reboot, Restore; Unpause does not) re-applies the spawn-time resource
// limits and, in a backend that plugs VIFs ([Capabilities] VIFs),
// re-attaches the instance's VIFs from state the backend keeps, so an
// instance comes back exactly as it was spawned. A start that fails after
// the process started leaves the instance stopped, in the state it was in
// before the call (a failed Restore leaves it soft-deleted), and never
// reported in one state while the backend's engine shows another.
//
// # Idempotency
//
// Destroy of a missing instance returns nil. Operations whose target state
// is the current one return nil (see the table). Spawn with a taken ID
// returns [ErrAlreadyExists] and leaves the existing instance untouched.
// Unplugging a VIF that is not plugged returns nil.
//
// # Concurrency
//
// A Driver is safe for concurrent use. Calls for the same instance ID
// (every method that takes an ID, Info, ConsoleOutput and InstanceStats
// included) are serialised by the backend in arrival order, so a read never
// sees an instance in the middle of a transition; calls for different IDs
// run concurrently. A call whose context ends while it waits for another
// call on the same ID returns the context's error without doing anything.
// List and HostResources take no instance's turn: they never wait for a
// slow call on one instance, and may show an instance that is in the middle
// of a transition in an intermediate state (a rebooting instance as shut
// down).
// Exec and AttachConsole take the instance's turn only while they set up,
// so a long command or an open console does not hold up the instance's
// other operations.
//
// # Agent operations
//
// [AgentDriver] adds what a compute agent needs day to day, each a small
// role interface: [Creator] (spawn with [SpawnOptions] CreateOnly leaves an
// instance created, to be started by PowerOn once its ports are ready),
// [Reconciler] (compare the backend with the caller's instances and
// report, stop or remove unknown instances, half-finished spawns and
// orphaned records, and finish or undo operations a crash interrupted;
// never touching an instance a call works on),
// [Resumer] (start the instances intended to run after an engine or host
// restart), [EventReplayer] (events with reasons, replay since a time, the
// slow-consumer rule, ErrUnavailable when the backend goes away),
// [Resizer] (live limits, persisted; *[LimitError] below current use),
// [ImageCache] (prefetch and prune), [BulkStatsReader] and
// [HostFactsReporter]. Resize is valid in [ResizeStates].
//
// # Crash recovery
//
// An agent may die at any instant, in the middle of any operation. After a
// restart, a new Driver on the same persistent state, a Reconcile with the
// stop or remove policy and then Resume (or one Reconcile with Resume set)
// bring every instance to the state before the interrupted operation or
// to the state after it, never a third, with the backend's engine, its
// records and the host devices of its VIFs agreeing:
//
//	operation interrupted       state after Reconcile and Resume
//	Spawn (CreateOnly too)      no instance (the remove policy removes a
//	                            half-spawned one, the stop policy stops
//	                            it), or the instance as spawned
//	PowerOff, SoftDelete        done: shut down (soft-deleted)
//	PowerOn, Restore, Reboot    done: running, with every step of its start
//	Pause, Unpause              before or after
//	Snapshot                    undone: the instance in the state it had
//	                            (unpaused if it ran; a user's pause
//	                            stays), no snapshot image
//	Rebuild                     before (the old file system, running if it
//	                            ran) or after (the new one, in the state
//	                            the instance had)
//	Resize                      before or after
//	PlugVIFs, AttachInterface   undone
//	UnplugVIFs, DetachInterface done
//	UpdateMetadata              done
//	Destroy                     before, or gone (the remove policy removes
//	                            the record and the VIFs left)
//
// Reconcile and Resume report the instances on which they found an
// operation left half done as Interrupted; report-only finds them and
// changes nothing. The remove policy also removes what the dead agent's
// backend objects left that no instance owns (a backend lists them in its
// documentation). A backend may recover an instance in any call that
// takes its turn (the Docker backend does); an agent should still run
// Reconcile and Resume before anything else after a restart.
//
// # Errors
//
// Errors returned by a Driver are *[OpError] values naming the operation and
// the instance, and wrap exactly one error class, tested with [errors.Is].
// The classes are the module's (package errclass), re-exported here, so
// that a class means the same from any layer: errors.Is(err, ErrNotFound)
// holds for a missing instance, a missing store image and a Placement
// provider alike. [ErrNotFound] (no such instance; [ErrImageNotFound] for
// its image, [ErrCommandNotFound] when Exec could not start its command),
// [ErrAlreadyExists], [ErrInvalidState], [ErrInvalidArgument] (the input
// was rejected before anything changed; [ErrNoInit] for an OS instance of
// an image without an init), [ErrUnavailable] (the engine or a service it
// needs cannot be reached, or is too old), [ErrNotSupported] (the backend,
// as configured, cannot do it; it wraps [errors.ErrUnsupported], and
// [Driver.Capabilities] says so up front), [ErrCorrupt] (a store image
// whose data does not match its checksum), [ErrGuestFailed] (an OS
// instance booted degraded, [ErrDegraded], or cloud-init failed,
// [ErrCloudInit]; see [OSInspector]), and [ErrConflict] and
// [ErrResourceExhausted] of the scheduling packages. The backend's own
// error stays in the chain too. A failed Spawn, VIF plug or Snapshot rolls
// back what it did before returning.
package hypervisor
