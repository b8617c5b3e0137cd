package network

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDeviceOwnerMark(t *testing.T) {
	port := "4e3b2c1a-7f00-4000-8000-000000000001"
	inst := "3f0c9a52-6f0e-4a37-9a8e-2f1f5b7c1d10"
	assert.Equal(t, "dockervisor:linuxbridge", DeviceOwner{Driver: "linuxbridge"}.Mark())
	assert.Equal(t, "dockervisor:ovs:"+inst+":"+port, DeviceOwner{Driver: "ovs", Instance: inst, Port: port}.Mark())
	assert.Equal(t, "dockervisor:ovs:a%3Ab%20c:p%25", DeviceOwner{Driver: "ovs", Instance: "a:b c", Port: "p%"}.Mark(),
		"':' and other bytes are escaped, so the fields stay apart")

	o := DeviceOwner{Driver: "linuxbridge", Instance: "k1", Port: port}
	assert.True(t, o.Owns(o.Mark()))
	for _, other := range []DeviceOwner{
		{Driver: "novanetwork", Instance: "k1", Port: port},
		{Driver: "linuxbridge", Instance: "k2", Port: port},
		{Driver: "linuxbridge", Instance: "k1", Port: port[:11] + "-other"},
		{Driver: "linuxbridge"},
	} {
		assert.False(t, o.Owns(other.Mark()), "%+v", other)
	}
	assert.False(t, o.Owns(""), "an unmarked device is not ours")
	assert.False(t, o.Owns("dockervisor"), "nor one with another alias")
	assert.True(t, DeviceOwner{Driver: "ovs"}.Shared())
	assert.False(t, o.Shared())

	long := DeviceOwner{Driver: "ovs", Instance: strings.Repeat("i", 300), Port: strings.Repeat("\xff", 300)}
	m := long.Mark()
	assert.LessOrEqual(t, len(m), MaxMarkLen)
	assert.NotEqual(t, m, DeviceOwner{Driver: "ovs", Instance: strings.Repeat("i", 301), Port: long.Port}.Mark())
	back, ok := ParseDeviceMark(m)
	require.True(t, ok)
	assert.Equal(t, "ovs", back.Driver)
	assert.True(t, strings.HasPrefix(back.Instance, "~"))
}

func TestParseDeviceMark(t *testing.T) {
	for _, o := range []DeviceOwner{
		{Driver: "ovs"},
		{Driver: "linuxbridge", Instance: "k1", Port: "p1"},
		{Driver: "ovs", Instance: "a:b c/%é", Port: "x\x00y"},
		{Driver: "ovs", Port: "only-port"},
	} {
		got, ok := ParseDeviceMark(o.Mark())
		require.True(t, ok, "%q", o.Mark())
		assert.Equal(t, o, got)
	}
	for _, bad := range []string{
		"", "dockervisor", "dockervisor:", "dockervisor:OVS", "dockervisor:ovs:a", "dockervisor:ovs:a:b:c",
		"dockervisor:ovs::", "dockervisor:ovs:a%3:b", "dockervisor:ovs:a%41:b", "dockervisor:ovs:a b:c",
		"dockervisor:ovs:~12:b", "someone else's alias",
		// The port-only alias of earlier versions is not a mark.
		"dockervisor:4e3b2c1a-7f00-4000-8000-000000000001",
	} {
		_, ok := ParseDeviceMark(bad)
		assert.False(t, ok, "%q", bad)
	}
}

func FuzzDeviceMark(f *testing.F) {
	f.Add("ovs", "3f0c9a52-6f0e-4a37-9a8e-2f1f5b7c1d10", "4e3b2c1a-7f00-4000-8000-000000000001")
	f.Add("linuxbridge", "", "")
	f.Add("novanetwork", "a:b", "%%")
	f.Add("ovs", strings.Repeat("x", 200), "\x00")
	f.Fuzz(func(t *testing.T, driver, inst, port string) {
		o := DeviceOwner{Driver: driver, Instance: inst, Port: port}
		m := o.Mark()
		if !validDriverName(driver) {
			return
		}
		if len(m) > MaxMarkLen {
			t.Fatalf("mark of %d bytes: %q", len(m), m)
		}
		back, ok := ParseDeviceMark(m)
		if !ok {
			t.Fatalf("mark %q does not parse", m)
		}
		if back.Driver != driver {
			t.Fatalf("mark %q parses to driver %q", m, back.Driver)
		}
		if len(escapeMarkPart(inst)) <= maxMarkPart && len(escapeMarkPart(port)) <= maxMarkPart {
			if back != o && (inst != "" || port != "") {
				t.Fatalf("round trip: %+v → %q → %+v", o, m, back)
			}
			if back.Mark() != m {
				t.Fatalf("mark %q parses to %+v, whose mark is %q", m, back, back.Mark())
			}
		}
		other := DeviceOwner{Driver: driver, Instance: inst + "x", Port: port}
		if o.Owns(other.Mark()) {
			t.Fatalf("%+v owns the mark of %+v", o, other)
		}
	})
}
