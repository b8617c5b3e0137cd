package metadata_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"net/netip"

	"github.com/dockervisor/dockervisor/configdrive"
	"github.com/dockervisor/dockervisor/network"
	"github.com/dockervisor/dockervisor/network/metadata"
)

// An instance's metadata, answered to a request from its fixed IP on its
// network, and 404 to anyone else.
func Example() {
	svc, err := metadata.Open()
	if err != nil {
		panic(err)
	}
	defer svc.Close()
	ip := netip.MustParseAddr("10.0.0.5")
	err = svc.Register(context.Background(), configdrive.Instance{
		UUID: "vm-1", Hostname: "web-1",
		UserData: []byte("#cloud-config\n"),
		VIFs: []network.VIF{{
			ID: "port-1", Type: network.VIFTypeBridge, NetworkID: "net-1",
			Subnets: []network.Subnet{{CIDR: netip.MustParsePrefix("10.0.0.0/24"), IPs: []netip.Addr{ip}}},
		}},
	})
	if err != nil {
		panic(err)
	}
	h := svc.Handler("net-1") // or svc.ListenNetns(ctx, "/run/netns/<service namespace>", "net-1")
	for _, from := range []string{"10.0.0.5", "10.0.0.6"} {
		req := httptest.NewRequest("GET", "http://169.254.169.254/latest/meta-data/hostname", nil)
		req.RemoteAddr = from + ":40000"
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		fmt.Println(from, w.Code, w.Body.String())
	}
	// Output:
	// 10.0.0.5 200 web-1
	// 10.0.0.6 404 404 Not Found
}
