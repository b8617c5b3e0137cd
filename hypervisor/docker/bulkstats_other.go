//go:build !linux

package docker

// newCgroupReader returns nil: only Linux has cgroups to read.
func newCgroupReader(int, string) cgroupReader { return nil }
