// Package stats holds host and instance resource samples, the collectors
// that read them from the kernel, and a Watch helper that delivers samples
// at an interval.
//
// # Host
//
// The /proc readers (ReadHostMemory, ReadLoadAverage, ReadUptime,
// ReadCPUTimes), DiskUsage (statfs, df's arithmetic) and NumCPU (online
// CPUs of the host, not the process's affinity) read the machine the
// agent runs on. Each has a Parse function for the file's content, so the
// parsing is tested with canned data and the readers against the real
// /proc. MemInfo is in bytes; Host is in MiB and GiB.
//
// HostSampler fills the host side of a Host and remembers the previous
// /proc/stat reading, so that each Sample reports the CPU utilisation
// since the previous one. The instance side of Host (VCPUsUsed,
// MemoryClaimedMB, Instances, HypervisorType, HypervisorVersion,
// APIVersion) is the caller's to fill: only the hypervisor backend knows
// its instances and its engine.
//
// # Instances
//
// Instance samples come from the backend (see internal/enginestats for
// the Docker engine's statistics). CPUPercent turns two cumulative CPU
// times into a rate. InterfaceCounters and InterfaceCountersAt read the
// counters of every interface, "lo" included, inside an instance's network
// namespace over route netlink; AttachPortIDs labels the interfaces this
// SDK plugged with their port IDs. A namespace that no longer exists gives
// an error wrapping ErrNamespaceGone.
//
// # Watching
//
// Watch calls a sampler at an interval and delivers Results on a channel
// that never holds more than one: a slow consumer sees fewer, fresh
// samples, and never blocks the sampler.
package stats
