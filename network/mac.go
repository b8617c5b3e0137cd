package network

import (
	"fmt"
	"net"
	"net/netip"
)

// MAC is a 48-bit Ethernet address. Its text and JSON form is the usual
// colon-separated lower-case hex ("fa:16:3e:00:00:01"), never base64. A nil
// MAC is "no address" (the kernel picks one) and marshals as "".
type MAC net.HardwareAddr

// ParseMAC parses s as a 48-bit MAC address in any form net.ParseMAC
// accepts. Other lengths (EUI-64, InfiniBand) wrap [ErrInvalidVIF].
func ParseMAC(s string) (MAC, error) {
	hw, err := net.ParseMAC(s)
	if err != nil {
		return nil, fmt.Errorf("%w: MAC address %q: %w", ErrInvalidVIF, s, err)
	}
	if len(hw) != 6 {
		return nil, fmt.Errorf("%w: MAC address %q is not 48 bits", ErrInvalidVIF, s)
	}
	return MAC(hw), nil
}

// MustParseMAC is ParseMAC for constants; it panics on error.
func MustParseMAC(s string) MAC {
	m, err := ParseMAC(s)
	if err != nil {
		panic(err)
	}
	return m
}

// String returns the colon-separated form, or "" for a nil MAC.
func (m MAC) String() string { return net.HardwareAddr(m).String() }

// HardwareAddr returns m as a net.HardwareAddr.
func (m MAC) HardwareAddr() net.HardwareAddr { return net.HardwareAddr(m) }

// MarshalText implements encoding.TextMarshaler.
func (m MAC) MarshalText() ([]byte, error) { return []byte(m.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler. Empty text is a nil MAC.
func (m *MAC) UnmarshalText(b []byte) error {
	if len(b) == 0 {
		*m = nil
		return nil
	}
	v, err := ParseMAC(string(b))
	if err != nil {
		return err
	}
	*m = v
	return nil
}

// validate checks that m is unset or a unicast, non-zero 48-bit address.
func (m MAC) validate() error {
	switch {
	case len(m) == 0:
		return nil
	case len(m) != 6:
		return fmt.Errorf("MAC address %s is not 48 bits", m)
	case m[0]&1 == 1:
		return fmt.Errorf("MAC address %s is multicast", m)
	case m[0]|m[1]|m[2]|m[3]|m[4]|m[5] == 0:
		return fmt.Errorf("MAC address %s is all zeros", m)
	}
	return nil
}

// SLAACAddress returns the address a host with MAC mac makes on the IPv6
// subnet p by SLAAC: the subnet's first 64 bits and the modified EUI-64
// interface identifier of the MAC (RFC 4291), the fixed IP Neutron gives a
// port on a slaac or dhcpv6-stateless subnet. It returns the zero Addr
// unless p is an IPv6 prefix and mac a 48-bit MAC.
func SLAACAddress(p netip.Prefix, mac MAC) netip.Addr {
	if !p.Addr().Is6() || len(mac) != 6 {
		return netip.Addr{}
	}
	b := p.Masked().Addr().As16()
	b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15] = mac[0]^0x02, mac[1], mac[2], 0xff, 0xfe, mac[3], mac[4], mac[5]
	return netip.AddrFrom16(b)
}
