//go:build !linux

package testenv

import "testing"

// NewHostNetns needs Linux network namespaces: elsewhere it skips (or
// fails in CI).
func NewHostNetns(t testing.TB) Netns {
	t.Helper()
	Missing(t, "network namespaces need Linux")
	return Netns{}
}

// NewGuestNetns needs Linux network namespaces: elsewhere it skips (or
// fails in CI).
func NewGuestNetns(t testing.TB) Netns {
	t.Helper()
	Missing(t, "network namespaces need Linux")
	return Netns{}
}
