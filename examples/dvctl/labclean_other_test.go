//go:build !linux

package main

import (
	"context"
	"testing"
)

// cleanupLabNetworks has nothing to remove where labs have no networks.
func cleanupLabNetworks(context.Context, testing.TB, string, string) {}
