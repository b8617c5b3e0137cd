// Package stats holds host and instance resource samples and a Watch
// helper that delivers samples at an interval. It has no operating-system
// code and builds everywhere; the Linux collectors live in their own
// packages: stats/procfs (host memory, CPU, load, disk from /proc and
// statfs) and stats/netcounters (interface counters inside a network
// namespace).
//
// # Samples
//
// [Host] is a compute node's resources as a scheduler consumes them, in
// MiB and GiB. [Instance] is one instance's usage, from the backend.
// CPUPercent turns two cumulative CPU times into a rate; AttachPortIDs
// labels an instance's interfaces with the port IDs of the VIFs they
// belong to.
//
// # Watching
//
// Watch calls a sampler at an interval and delivers Results on a channel
// that never holds more than one: a slow consumer sees fewer, fresh
// samples, and never blocks the sampler.
package stats
