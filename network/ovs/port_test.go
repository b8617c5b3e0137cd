package ovs

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dockervisor/dockervisor/network"
)

var testSpec = portSpec{Bridge: "br-int", Name: "qvo3f1c2b4a-9d", IfaceID: "3f1c2b4a-9d7e-4c1a-8b6f-0123456789ab", MAC: "fa:16:3e:00:00:01", VMUUID: "inst-1"}

func TestAddArgsIsOneTransaction(t *testing.T) {
	assert.Equal(t, []string{
		"--", "--may-exist", "add-port", "br-int", "qvo3f1c2b4a-9d",
		"--", "set", "Interface", "qvo3f1c2b4a-9d",
		`external-ids:iface-id="3f1c2b4a-9d7e-4c1a-8b6f-0123456789ab"`,
		"external-ids:iface-status=active",
		`external-ids:attached-mac="fa:16:3e:00:00:01"`,
		`external-ids:vm-uuid="inst-1"`,
		"external-ids:created-by=dockervisor",
	}, testSpec.addArgs())
	noMAC := testSpec
	noMAC.MAC = ""
	assert.NotContains(t, noMAC.addArgs(), `external-ids:attached-mac=""`)
}

func TestParseIface(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		want iface
	}{
		{"missing", `{"data":[],"headings":["ofport","error","external_ids"]}`, iface{}},
		{"ok", `{"data":[[3,["set",[]],["map",[["created-by","dockervisor"],["iface-id","p1"]]]]],"headings":["ofport","error","external_ids"]}`,
			iface{Exists: true, OFPort: 3, ExternalID: map[string]string{"created-by": "dockervisor", "iface-id": "p1"}}},
		{"failed", `{"data":[[-1,"could not open network device x (No such device)",["map",[]]]],"headings":["ofport","error","external_ids"]}`,
			iface{Exists: true, OFPort: -1, Error: "could not open network device x (No such device)", ExternalID: map[string]string{}}},
		{"no ofport yet", `{"data":[[["set",[]],["set",[]],["map",[]]]],"headings":["ofport","error","external_ids"]}`,
			iface{Exists: true, ExternalID: map[string]string{}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseIface([]byte(tc.in))
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
	_, err := parseIface([]byte("not json"))
	assert.ErrorIs(t, err, ErrCommand)
}

func TestAddPort(t *testing.T) {
	ctx := t.Context()
	r := newRecorder("br-int")
	added, err := addPort(ctx, runnerLookup{r}, r, testSpec, false)
	require.NoError(t, err)
	assert.True(t, added)
	writes := r.writes()
	require.Len(t, writes, 1, "one transaction per plug")
	assert.Equal(t, testSpec.addArgs(), writes[0])
	assert.Equal(t, "active", r.ifaces[testSpec.Name].ids["iface-status"])

	// Plugging again is one more (idempotent) transaction, not a new port.
	added, err = addPort(ctx, runnerLookup{r}, r, testSpec, false)
	require.NoError(t, err)
	assert.False(t, added)
	assert.Len(t, r.ifaces, 1)
}

func TestAddPortFailedDeviceRollsBack(t *testing.T) {
	r := newRecorder("br-int")
	r.failDevice[testSpec.Name] = true
	added, err := addPort(t.Context(), runnerLookup{r}, r, testSpec, false)
	require.ErrorIs(t, err, ErrPortFailed)
	assert.False(t, added)
	assert.Empty(t, r.ifaces, "the failed port is deleted")
}

func TestAddPortLeavesForeignPort(t *testing.T) {
	for name, ids := range map[string]map[string]string{
		"created by others": {"iface-id": testSpec.IfaceID, "vm-uuid": testSpec.VMUUID},
		"another instance":  {OwnerKey: OwnerValue, "iface-id": testSpec.IfaceID, "vm-uuid": "inst-2"},
		// A port ID that starts the same: the same port name.
		"another port": {OwnerKey: OwnerValue, "iface-id": testSpec.IfaceID[:11] + "-other", "vm-uuid": testSpec.VMUUID},
	} {
		t.Run(name, func(t *testing.T) {
			r := newRecorder("br-int")
			r.ifaces[testSpec.Name] = &fakeIface{bridge: "br-int", ofport: 7, ids: ids}
			_, err := addPort(t.Context(), runnerLookup{r}, r, testSpec, true)
			require.ErrorIs(t, err, network.ErrDeviceConflict)
			require.ErrorIs(t, checkPort(t.Context(), runnerLookup{r}, testSpec), network.ErrDeviceConflict)
			assert.Empty(t, r.writes(), "nothing written over a port that is not ours")
			require.NoError(t, delOwnedPort(t.Context(), runnerLookup{r}, r, testSpec))
			assert.Empty(t, r.writes(), "a port that is not ours is never deleted")
			assert.Equal(t, ids, r.ifaces[testSpec.Name].ids)
		})
	}
	r := newRecorder("br-int")
	_, err := addPort(t.Context(), runnerLookup{r}, r, testSpec, true)
	require.NoError(t, err)
	require.NoError(t, checkPort(t.Context(), runnerLookup{r}, testSpec))
	require.NoError(t, delOwnedPort(t.Context(), runnerLookup{r}, r, testSpec))
	assert.Empty(t, r.ifaces, "our own port is deleted")
}

func TestAddPortMissingBridge(t *testing.T) {
	r := newRecorder()
	_, err := addPort(t.Context(), runnerLookup{r}, r, testSpec, false)
	assert.ErrorIs(t, err, ErrBridgeNotFound)
}

func TestAddPortUnavailable(t *testing.T) {
	r := newRecorder("br-int")
	r.down = true
	_, err := addPort(t.Context(), runnerLookup{r}, r, testSpec, false)
	assert.ErrorIs(t, err, ErrUnavailable)
	assert.ErrorIs(t, err, network.ErrUnavailable)
}

// fakeVsctl writes a shell script standing in for ovs-vsctl.
func fakeVsctl(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "ovs-vsctl")
	require.NoError(t, os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755))
	return p
}

func TestVsctlRun(t *testing.T) {
	if _, err := os.Stat("/bin/sh"); err != nil {
		t.Skip("no /bin/sh")
	}
	ctx := t.Context()
	t.Run("args", func(t *testing.T) {
		v := Vsctl{Path: fakeVsctl(t, `printf '%s\n' "$@"`), DB: "unix:/x/db.sock", Timeout: 1500 * time.Millisecond}
		out, err := v.Run(ctx, "show")
		require.NoError(t, err)
		assert.Equal(t, "--timeout=2\n--db=unix:/x/db.sock\nshow\n", string(out))
	})
	for _, tc := range []struct {
		name, body string
		class      error
	}{
		{"timeout", `kill -ALRM $$`, ErrUnavailable},
		{"db down", `echo "ovs-vsctl: unix:/x/db.sock: database connection failed (No such file or directory)" >&2; exit 1`, ErrUnavailable},
		{"no bridge", `echo "ovs-vsctl: no bridge named br-x" >&2; exit 1`, ErrBridgeNotFound},
		{"setup error", `echo "ovs-vsctl: Error detected while setting up 'qvo1': could not open network device qvo1 (No such device).  See ovs-vswitchd log for details." >&2; exit 0`, ErrPortFailed},
		{"other", `echo "ovs-vsctl: something else" >&2; exit 1`, ErrCommand},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Vsctl{Path: fakeVsctl(t, tc.body)}.Run(ctx, "show")
			require.ErrorIs(t, err, tc.class)
			var e *Error
			require.True(t, errors.As(err, &e))
			assert.Equal(t, []string{"show"}, e.Args)
		})
	}
	t.Run("missing binary", func(t *testing.T) {
		_, err := Vsctl{Path: filepath.Join(t.TempDir(), "nope")}.Run(ctx, "show")
		assert.ErrorIs(t, err, ErrUnavailable)
	})
	t.Run("context", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		_, err := Vsctl{Path: fakeVsctl(t, `sleep 5`)}.Run(cctx, "show")
		assert.ErrorIs(t, err, ErrUnavailable)
		assert.ErrorIs(t, err, context.Canceled)
	})
}
