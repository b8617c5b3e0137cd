// Package placement reports the hosts a [hypervisor.Driver] serves to
// OpenStack Placement, the inventory and allocation service that Nova's
// and Zun's schedulers use, and places instances across hosts from
// Placement's allocation candidates. It talks to Placement through
// gophercloud's openstack/placement/v1 packages at microversion
// [Microversion], with a keystone-authenticated client ([NewClient],
// [NewClientFromProvider]) or without keystone ([NewNoAuthClient], for
// Placement's noauth2 strategy).
//
// # Reporting a host
//
// A [Reporter] keeps one host's resource provider current: its UUID (set
// with [WithNodeUUID] or made up once and kept in the file of
// [WithStateFile], so it is stable across restarts), its name (the
// driver's node name), its inventory in standard resource classes (VCPU
// with an allocation ratio, MEMORY_MB with reserved memory, DISK_GB when
// the host has a known disk; min unit 1, max unit the total, step 1,
// all tunable with [WithInventoryPolicy]) and its traits (COMPUTE_NODE,
// the standard COMPUTE_* trait of a capability where one exists and a
// CUSTOM_DOCKERVISOR_* trait otherwise, see [CapabilityTraits]). Every
// write carries the provider's generation and is retried on a generation
// conflict; [Reporter.Run] reports periodically.
//
// # Disabled hosts
//
// A host is disabled by the standard trait [TraitDisabled]
// (COMPUTE_STATUS_DISABLED), as Nova marks a disabled compute service;
// its inventory and allocations stay, so the instances it held remain
// accounted for. Reports set it while the engine does not answer
// (hypervisor.ErrUnavailable) and clear it when it answers again, unless
// an operator disabled the host ([Reporter.SetDisabled]). Schedulers of
// this package always ask for candidates without it.
//
// # Claims
//
// A [Claimer] claims an instance's resources as a new Placement consumer
// whose UUID is the instance ID, so an instance can never hold two claims
// ([ErrAlreadyClaimed]). (Placement itself can let two concurrent claims of
// one new consumer both succeed, the later replacing the earlier, and the
// request that loses such a race can hide the winner's allocations; a
// [Scheduler] checks its claim after the spawn, gives way to a claim
// elsewhere and claims again a consumer left with none, see
// [Scheduler.Place]; a claim answered after that check can still leave
// an instance on two hosts, which a periodic [Scheduler.Sweep] settles by
// keeping the copy where its allocations are.) [SpawnClaimed] claims,
// spawns, and removes the claim when the spawn fails; [DestroyReleased]
// destroys, then releases.
// [Claimer.Reconcile] compares a provider's allocations with the
// instances on its host and reports or repairs the differences.
//
// # Scheduling
//
// A [Scheduler] asks Placement for a bounded number of allocation
// candidates ([WithCandidateLimit], [DefaultCandidateLimit]; Nova's
// max_placement_results), decoding only the parts it weighs, ranks them
// with a [Weigher] ([Spread], [Pack] or the caller's; equal weights in
// random order), claims the best and, in [Scheduler.Place], spawns on the
// chosen host. A claim that loses a race to another scheduler
// ([ErrConflict]) moves on to the next candidate of the same answer, and
// to fresh candidates when those are used up. The clients of [NewClient]
// and [NewNoAuthClient] keep their connections alive ([IdleConnTimeout]). A spawn that fails because the host's engine does not
// answer takes the host down ([Scheduler.TakeDown]: its provider is
// disabled, the instances still allocated there are reported in a
// [HostDown]) and the instance is placed elsewhere.
//
// # Concurrency
//
// Reporter, Claimer and Scheduler are safe for concurrent use. One
// Reporter per host should write its provider; several are tolerated
// (their writes retry on generation conflicts).
//
// # Errors
//
// Errors wrap one of [ErrInvalidArgument], [ErrNotFound], [ErrConflict],
// [ErrAlreadyClaimed], [ErrNoCandidates] and [ErrUnavailable], with the
// gophercloud error in the chain; driver errors (hypervisor classes) are
// passed through.
package placement
