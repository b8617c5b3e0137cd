// Package procfs reads a Linux host's resources from the kernel: memory,
// load, uptime and CPU times from /proc, disk use through statfs, online
// CPUs from /sys. Each reader has a Parse function for the file's content,
// which builds on every OS, so the parsing is tested with canned data and
// the readers (Linux only) against the real /proc. MemInfo is in bytes; a
// [stats.Host] from [HostSampler] is in MiB and GiB.
//
// HostSampler fills the host side of a stats.Host and remembers the
// previous /proc/stat reading, so that each Sample reports the CPU
// utilisation since the previous one. The instance side of Host
// (VCPUsUsed, MemoryClaimedMB, Instances, HypervisorType,
// HypervisorVersion, APIVersion) is the caller's to fill.
package procfs
