//go:build linux

package dhcp_test

import (
	"context"
	"net/netip"

	"github.com/dockervisor/dockervisor/network"
	"github.com/dockervisor/dockervisor/network/dhcp"
)

// A network's DHCP server in its service namespace, its hosts following
// the ports a Docker backend plugs.
func Example() {
	ctx := context.Background()
	srv, err := dhcp.Start(ctx, dhcp.Config{
		Dir:       "/run/my-agent/dhcp/net-1",
		NetNS:     "/run/netns/svc-net-1", // where svcport.Ensure put the DHCP port
		Interface: "svc0",
		Subnets: []dhcp.Subnet{
			{CIDR: netip.MustParsePrefix("10.0.0.0/24"), Mode: dhcp.ModeDHCP, Gateway: netip.MustParseAddr("10.0.0.1")},
			{CIDR: netip.MustParsePrefix("fd00:1::/64"), Mode: dhcp.ModeSLAAC},
		},
		MetadataRoute: netip.MustParseAddr("10.0.0.2"),
	}, nil)
	if err != nil {
		panic(err)
	}
	defer srv.Stop(ctx)
	// docker.WithPortObserver(hook): each port's host entry follows it.
	hook := dhcp.NewPortHook(func(v network.VIF) (*dhcp.Server, bool) { return srv, v.NetworkID == "net-1" })
	_ = hook
}
