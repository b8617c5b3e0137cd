package dhcp

import (
	"bufio"
	"bytes"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/dockervisor/dockervisor/network"
)

// Lease is one lease the server gave, from its lease file.
type Lease struct {
	// Expires is when the lease ends; zero for an infinite lease.
	Expires time.Time `json:"expires,omitzero"`
	// MAC is the client's MAC (DHCPv4 leases; nil for DHCPv6).
	MAC network.MAC `json:"mac,omitempty"`
	// IP is the leased address.
	IP netip.Addr `json:"ip"`
	// Hostname is the name the client was given or sent; empty for none.
	Hostname string `json:"hostname,omitempty"`
	// ClientID is the client identifier (DHCPv4) or DUID (DHCPv6).
	ClientID string `json:"client_id,omitempty"`
}

// parseLeases reads dnsmasq's lease file: DHCPv4 lines "expiry MAC IP
// name client-id", then, after a "duid" line, DHCPv6 lines "expiry IAID
// IP name DUID".
func parseLeases(b []byte) ([]Lease, error) {
	var out []Lease
	v6 := false
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		if f[0] == "duid" {
			v6 = true
			continue
		}
		if len(f) < 5 {
			return nil, fmt.Errorf("dhcp: malformed lease %q", sc.Text())
		}
		exp, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("dhcp: malformed lease %q", sc.Text())
		}
		var l Lease
		if exp != 0 {
			l.Expires = time.Unix(exp, 0)
		}
		if l.IP, err = netip.ParseAddr(f[2]); err != nil {
			return nil, fmt.Errorf("dhcp: malformed lease %q", sc.Text())
		}
		if !v6 {
			if l.MAC, err = network.ParseMAC(f[1]); err != nil {
				return nil, fmt.Errorf("dhcp: malformed lease %q", sc.Text())
			}
		}
		if f[3] != "*" {
			l.Hostname = f[3]
		}
		if f[4] != "*" {
			l.ClientID = f[4]
		}
		out = append(out, l)
	}
	return out, sc.Err()
}
