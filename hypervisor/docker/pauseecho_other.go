//go:build !linux

package docker

// freezerState cannot tell: only Linux has a freezer to read.
func freezerState(int) (frozen, known bool) { return false, false }
