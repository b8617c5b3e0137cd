package network

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDeviceNames(t *testing.T) {
	d, err := DeviceNames("4e3b2c1a-7f00-4000-8000-000000000001")
	require.NoError(t, err)
	assert.Equal(t, Devices{
		Tap: "tap4e3b2c1a-7f", Bridge: "qbr4e3b2c1a-7f", VethBridge: "qvb4e3b2c1a-7f",
		VethOVS: "qvo4e3b2c1a-7f", Guest: "ns4e3b2c1a-7f",
	}, d)

	short, err := DeviceNames("p1")
	require.NoError(t, err)
	assert.Equal(t, "tapp1", short.Tap)

	for _, bad := range []string{"", "a/b", "a:b", "a b", "a%d", "é", "a\x00"} {
		_, err := DeviceNames(bad)
		assert.ErrorIs(t, err, ErrInvalidVIF, "%q", bad)
	}
	// Only the used prefix matters: a long tail of anything is fine.
	_, err = DeviceNames("abcdefghijk/with:odd tail")
	assert.NoError(t, err)
}

func TestValidateDeviceName(t *testing.T) {
	assert.NoError(t, ValidateDeviceName("br-int"))
	assert.NoError(t, ValidateDeviceName(strings.Repeat("b", 15)))
	assert.ErrorIs(t, ValidateDeviceName(strings.Repeat("b", 16)), ErrDeviceNameTooLong)
	assert.ErrorIs(t, ValidateDeviceName(strings.Repeat("b", 16)), ErrInvalidVIF)
	for _, bad := range []string{"", ".", "..", "a/b", "a b", "a:1", "eth%d", "tab\t"} {
		assert.ErrorIs(t, ValidateDeviceName(bad), ErrInvalidVIF, "%q", bad)
	}
}

func FuzzDeviceNames(f *testing.F) {
	for _, s := range []string{"4e3b2c1a-7f00-4000-8000-000000000001", "", "x", "a/b", "%%%%", "ünïcode-port-id", "12345678901"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) {
		d, err := DeviceNames(id)
		if err != nil {
			if d != (Devices{}) {
				t.Fatalf("error with names: %+v", d)
			}
			return
		}
		p := id[:min(len(id), PortIDPrefixLen)]
		for prefix, n := range map[string]string{"tap": d.Tap, "qbr": d.Bridge, "qvb": d.VethBridge, "qvo": d.VethOVS, "ns": d.Guest} {
			if n != prefix+p {
				t.Fatalf("%s name %q, want %q", prefix, n, prefix+p)
			}
			if len(n) > 14 {
				t.Fatalf("name %q longer than 14", n)
			}
			if err := ValidateDeviceName(n); err != nil {
				t.Fatalf("derived name %q invalid: %v", n, err)
			}
		}
		again, _ := DeviceNames(id)
		if again != d {
			t.Fatalf("not pure: %+v then %+v", d, again)
		}
	})
}
