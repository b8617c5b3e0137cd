package ovs

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dockervisor/dockervisor/internal/testenv"
)

// TestOVSDBLookupReal reads an interface of a real ovsdb-server with the
// OVSDB select and checks it against what ovs-vsctl find reads.
func TestOVSDBLookupReal(t *testing.T) {
	o := testenv.MustHaveOVS(t)
	ctx := t.Context()
	l, ok := newOVSDBLookup(o.DB, 5*time.Second)
	require.True(t, ok)
	v := Vsctl{DB: o.DB}
	name := testenv.UniqueName("tdbl")
	missing, err := l.lookup(ctx, name)
	require.NoError(t, err)
	assert.False(t, missing.Exists)

	// A port with no device: Open vSwitch records ofport -1 and an error.
	_, err = v.Run(ctx, "--", "add-port", o.Bridge, name, "--", "set", "Interface", name,
		`external-ids:iface-id="a b:c"`, "external-ids:"+OwnerKey+"="+OwnerValue)
	t.Cleanup(func() { _, _ = v.Run(t.Context(), "--if-exists", "del-port", name) })
	require.ErrorIs(t, err, ErrPortFailed)
	start := time.Now()
	got, err := l.lookup(ctx, name)
	t.Logf("ovsdb select: %v", time.Since(start))
	require.NoError(t, err)
	start = time.Now()
	want, err := getIface(ctx, v, name)
	t.Logf("ovs-vsctl find: %v", time.Since(start))
	require.NoError(t, err)
	assert.Equal(t, want, got)
	assert.True(t, got.Exists)
	assert.True(t, got.owned(portSpec{Name: name, IfaceID: "a b:c"}), "the mark, this port, no instance")
	assert.False(t, got.owned(portSpec{Name: name, IfaceID: "a b:c", VMUUID: "k2"}), "another instance's")
	assert.Equal(t, "a b:c", got.ExternalID["iface-id"])
	assert.Equal(t, -1, got.OFPort)
	assert.NotEmpty(t, got.Error)
}
