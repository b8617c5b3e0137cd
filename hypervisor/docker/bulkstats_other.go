//go:build !linux

package docker

// newCgroupReader returns nil: only Linux has cgroups to read.
func newCgroupReader(int, string) cgroupReader { return nil }

// runtimeCgroup returns base: only Linux has cgroups.
func runtimeCgroup(base, _ string) (string, bool) { return base, false }
