//go:build !linux

package testenv

import "testing"

// OVS is a private Open vSwitch, which needs Linux.
type OVS struct{}

// MustHaveOVS needs Linux: elsewhere it skips (or fails in CI).
func MustHaveOVS(t testing.TB) *OVS {
	t.Helper()
	Missing(t, "a private Open vSwitch needs Linux")
	return nil
}

// StartOVS needs Linux: elsewhere it skips (or fails in CI).
func StartOVS(t testing.TB) *OVS {
	t.Helper()
	Missing(t, "a private Open vSwitch needs Linux")
	return nil
}

// StopOVS does nothing where there is no private Open vSwitch.
func StopOVS() {}
