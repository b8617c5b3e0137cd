package main

import (
	"github.com/dockervisor/dockervisor/network"
	"github.com/dockervisor/dockervisor/network/linuxbridge"
)

// bridgeDriver returns the Linux bridge VIF driver for VIFs outside labs,
// with its host side in the namespace at hostNetns ("" for dvctl's own).
func bridgeDriver(hostNetns string) (network.VIFDriver, func() error, error) {
	var opts []linuxbridge.Option
	if hostNetns != "" {
		opts = append(opts, linuxbridge.WithHostNetNS(hostNetns))
	}
	lb, err := linuxbridge.New(opts...)
	if err != nil {
		return nil, nil, err
	}
	return lb, lb.Close, nil
}
