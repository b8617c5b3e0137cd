//go:build !linux

package main

import "github.com/dockervisor/dockervisor/network"

// bridgeDriver has no Linux bridges to offer: VIFs are refused as not
// supported (a remote engine's host is not this machine).
func bridgeDriver(string) (network.VIFDriver, func() error, error) {
	return nil, func() error { return nil }, nil
}
