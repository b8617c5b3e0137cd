package network

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// MarkPrefix starts every owner mark (see [DeviceOwner.Mark]).
const MarkPrefix = "dockervisor:"

// MaxMarkLen is the longest interface alias Linux keeps (IFALIASZ minus the
// terminating NUL); every mark fits in it.
const MaxMarkLen = 255

// maxMarkPart is the longest escaped instance or port ID a mark holds as
// is; a longer one is written as its digest, so that a mark never exceeds
// [MaxMarkLen].
const maxMarkPart = 100

// DeviceOwner says whose a host device is: the VIF driver that created it
// and, for a device of one port, the instance and the port. A device shared
// by the ports of several instances (a Linux bridge, a VLAN device) has an
// owner with Instance and Port empty.
//
// Every host device a VIF driver creates carries its owner's
// [DeviceOwner.Mark] as its interface alias (IFLA_IFALIAS, which
// `ip link show` prints as "alias …") from the moment it has its final
// name, and a driver deletes, moves or reconfigures a device only when the
// device carries the mark the driver would have given it: the same driver,
// instance and port. A device of a name the driver needs that carries any
// other mark, or none, belongs to someone else and is
// [ErrDeviceConflict].
type DeviceOwner struct {
	// Driver names the driver: "linuxbridge", "novanetwork", "ovs". It is
	// made of lowercase ASCII letters and digits.
	Driver string
	// Instance is the ID of the instance the device was created for, or
	// empty for a shared device.
	Instance string
	// Port is the port ID of the VIF the device was created for, or empty
	// for a shared device.
	Port string
}

// Mark returns the owner mark of o, the interface alias the drivers set:
//
//	dockervisor:<driver>                          a shared device
//	dockervisor:<driver>:<instance>:<port>        a device of one port
//
// for example "dockervisor:linuxbridge" and
// "dockervisor:ovs:3f0c9a52-6f0e-4a37-9a8e-2f1f5b7c1d10:4e3b2c1a-7f00-4000-8000-000000000001".
// In the instance and port IDs every byte other than an ASCII letter,
// digit, '-', '_' or '.' is written as '%' and two uppercase hex digits
// (so ':' is "%3A"); an ID whose escaped form is longer than 100 bytes is
// written as '~' followed by the first 32 hex digits of its SHA-256. A mark
// is at most [MaxMarkLen] bytes for a driver name of up to 32 bytes. Mark
// is a pure function: equal owners have equal marks, and different owners
// (different driver, instance or port) have different ones, except for
// two IDs over 100 bytes with the same digest.
func (o DeviceOwner) Mark() string {
	if o.Instance == "" && o.Port == "" {
		return MarkPrefix + o.Driver
	}
	return MarkPrefix + o.Driver + ":" + markPart(o.Instance) + ":" + markPart(o.Port)
}

// Owns reports whether alias, a device's interface alias, is o's mark.
func (o DeviceOwner) Owns(alias string) bool { return alias == o.Mark() }

// Shared reports whether o is the owner of a shared device (no instance
// and no port).
func (o DeviceOwner) Shared() bool { return o.Instance == "" && o.Port == "" }

// ParseDeviceMark reads an owner mark written by [DeviceOwner.Mark]. It
// reports false for an alias that is not a mark (someone else's alias, or
// none). An ID written as a digest comes back as written ('~' and hex
// digits).
func ParseDeviceMark(alias string) (DeviceOwner, bool) {
	rest, ok := strings.CutPrefix(alias, MarkPrefix)
	if !ok {
		return DeviceOwner{}, false
	}
	parts := strings.Split(rest, ":")
	if !validDriverName(parts[0]) {
		return DeviceOwner{}, false
	}
	switch len(parts) {
	case 1:
		return DeviceOwner{Driver: parts[0]}, true
	case 3:
		inst, ok1 := unescapeMarkPart(parts[1])
		port, ok2 := unescapeMarkPart(parts[2])
		if !ok1 || !ok2 || inst == "" && port == "" {
			return DeviceOwner{}, false
		}
		return DeviceOwner{Driver: parts[0], Instance: inst, Port: port}, true
	}
	return DeviceOwner{}, false
}

func validDriverName(s string) bool {
	if s == "" || len(s) > 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

const hexDigits = "0123456789ABCDEF"

// markPart escapes an instance or port ID for a mark, or digests it.
func markPart(s string) string {
	e := escapeMarkPart(s)
	if len(e) > maxMarkPart {
		sum := sha256.Sum256([]byte(s))
		return "~" + hex.EncodeToString(sum[:16])
	}
	return e
}

func escapeMarkPart(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if c := s[i]; nameByte(c) {
			b.WriteByte(c)
		} else {
			b.WriteByte('%')
			b.WriteByte(hexDigits[c>>4])
			b.WriteByte(hexDigits[c&15])
		}
	}
	return b.String()
}

// unescapeMarkPart reverses markPart; a digest is returned as written.
func unescapeMarkPart(s string) (string, bool) {
	if d, ok := strings.CutPrefix(s, "~"); ok {
		if len(d) != 32 {
			return "", false
		}
		if _, err := hex.DecodeString(d); err != nil {
			return "", false
		}
		return s, true
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case nameByte(c):
			b.WriteByte(c)
		case c == '%' && i+2 < len(s):
			hi, lo := strings.IndexByte(hexDigits, s[i+1]), strings.IndexByte(hexDigits, s[i+2])
			if hi < 0 || lo < 0 || nameByte(byte(hi<<4|lo)) {
				return "", false // not the one escaping Mark writes
			}
			b.WriteByte(byte(hi<<4 | lo))
			i += 2
		default:
			return "", false
		}
	}
	return b.String(), true
}
