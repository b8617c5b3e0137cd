//go:build !linux

package docker

// killInNamespace cannot reach engine processes off Linux.
func killInNamespace(pid, initPID int) error { return errRemoteProcess }
