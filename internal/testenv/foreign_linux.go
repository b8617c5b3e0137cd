package testenv

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dockervisor/dockervisor/network/networktest"
)

// ForeignBridge creates a Linux bridge called name, up, in the namespace
// at path, as an operator would make one (no owner mark), and returns it as
// a networktest.ForeignDevice whose Describe shows its kind, index, alias,
// master, state, MTU and ports. It is deleted when the test ends if it is
// still there.
func ForeignBridge(t *testing.T, path, name string) networktest.ForeignDevice {
	t.Helper()
	for _, args := range [][]string{{"ip", "link", "add", name, "type", "bridge"}, {"ip", "link", "set", name, "up"}} {
		if out, err := RunInNetns(t, t.Context(), path, args...); err != nil {
			t.Fatalf("%v in %s: %v: %s", args, path, err, out)
		}
	}
	d := &foreignLink{path: path, name: name}
	index := d.index(t)
	remove := func(t *testing.T) {
		// Only the device this test made: by the index it was made with.
		if d.index(t) == index {
			if out, err := RunInNetns(t, context.WithoutCancel(t.Context()), path, "ip", "link", "del", name); err != nil {
				t.Errorf("remove %s: %v: %s", name, err, out)
			}
		}
	}
	t.Cleanup(func() { remove(t) })
	return networktest.ForeignDevice{Describe: d.describe, Remove: remove}
}

type foreignLink struct{ path, name string }

// ipLinkJSON is what `ip -d -j link show` says of a link.
type ipLinkJSON struct {
	IfIndex  int      `json:"ifindex"`
	IfName   string   `json:"ifname"`
	Flags    []string `json:"flags"`
	MTU      int      `json:"mtu"`
	Master   string   `json:"master"`
	IfAlias  string   `json:"ifalias"`
	LinkInfo struct {
		Kind string `json:"info_kind"`
	} `json:"linkinfo"`
}

func (d *foreignLink) links(t *testing.T) []ipLinkJSON {
	t.Helper()
	// WithoutCancel: it also runs in the test's cleanup.
	var links []ipLinkJSON
	if err := IPJSONInNetns(t, context.WithoutCancel(t.Context()), d.path, &links, "-d", "link", "show"); err != nil {
		t.Fatal(err)
	}
	return links
}

func (d *foreignLink) index(t *testing.T) int {
	for _, l := range d.links(t) {
		if l.IfName == d.name {
			return l.IfIndex
		}
	}
	return 0
}

func (d *foreignLink) describe(t *testing.T) string {
	links := d.links(t)
	var ports []string
	for _, l := range links {
		if l.Master == d.name {
			ports = append(ports, l.IfName)
		}
	}
	for _, l := range links {
		if l.IfName == d.name {
			return fmt.Sprintf("%s %s index=%d alias=%q master=%q flags=%s mtu=%d ports=%v",
				l.LinkInfo.Kind, l.IfName, l.IfIndex, l.IfAlias, l.Master, strings.Join(l.Flags, ","), l.MTU, ports)
		}
	}
	return ""
}

// LinkState lists the links in the namespace at path as "name#index",
// sorted, so that a device deleted and made again under its name shows:
// the HostState of a networktest.Harness.
func LinkState(t *testing.T, path string) []string {
	t.Helper()
	var s []string
	for _, l := range (&foreignLink{path: path}).links(t) {
		s = append(s, fmt.Sprintf("%s#%d", l.IfName, l.IfIndex))
	}
	slices.Sort(s)
	return s
}

// PingAddr sends echo requests from the namespace at path to addr, one at
// a time for up to 10 seconds (see [PingEventually]), and returns an error
// with ping's output if none was answered: the Ping of a
// networktest.Harness, which checks that traffic passes.
func PingAddr(t *testing.T, path string, addr netip.Addr) error {
	t.Helper()
	return PingAddrWithin(10*time.Second)(t, path, addr)
}

// PingAddrWithin is [PingAddr] with its retry window: 0 makes one try.
func PingAddrWithin(within time.Duration) func(t *testing.T, path string, addr netip.Addr) error {
	return func(t *testing.T, path string, addr netip.Addr) error {
		t.Helper()
		out, err := PingEventually(t, path, addr.String(), within)
		if err != nil {
			return fmt.Errorf("ping %s from %s: %w: %s", addr, path, err, out)
		}
		return nil
	}
}
