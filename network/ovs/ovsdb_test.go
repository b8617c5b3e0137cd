package ovs

import (
	"context"
	"encoding/json"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dockervisor/dockervisor/network"
)

// fakeOVSDB serves one connection on a unix socket: it checks the select
// request and answers with reply (after an echo request when echo is set);
// an empty reply closes the connection without answering.
func fakeOVSDB(t *testing.T, echo bool, reply func(id json.RawMessage) string) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "db.sock")
	ln, err := net.Listen("unix", sock)
	require.NoError(t, err)
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		dec, enc := json.NewDecoder(c), json.NewEncoder(c)
		var req rpcMessage
		if err := dec.Decode(&req); err != nil {
			return
		}
		if req.Method != "transact" || len(req.Params) != 2 || string(req.Params[0]) != `"Open_vSwitch"` {
			_ = enc.Encode(map[string]any{"result": nil, "error": "bad request", "id": req.ID})
			return
		}
		var op map[string]any
		_ = json.Unmarshal(req.Params[1], &op)
		if op["op"] != "select" || op["table"] != "Interface" {
			_ = enc.Encode(map[string]any{"result": nil, "error": "bad op", "id": req.ID})
			return
		}
		if echo {
			_ = enc.Encode(map[string]any{"method": "echo", "params": []any{}, "id": "echo"})
			var pong rpcMessage
			if err := dec.Decode(&pong); err != nil || string(pong.ID) != `"echo"` {
				return
			}
		}
		if r := reply(req.ID); r != "" {
			_, _ = c.Write([]byte(r))
		}
	}()
	return "unix:" + sock
}

func rows(rows string) func(json.RawMessage) string {
	return func(id json.RawMessage) string {
		return `{"id":` + string(id) + `,"error":null,"result":[{"rows":` + rows + `}]}`
	}
}

func TestOVSDBLookup(t *testing.T) {
	for _, tc := range []struct {
		name  string
		echo  bool
		reply func(json.RawMessage) string
		want  iface
		class error
	}{
		{name: "missing", reply: rows(`[]`), want: iface{}},
		{name: "ok", echo: true, reply: rows(`[{"ofport":3,"error":["set",[]],"external_ids":["map",[["created-by","dockervisor"],["iface-id","p 1:x"]]]}]`),
			want: iface{Exists: true, OFPort: 3, ExternalID: map[string]string{"created-by": "dockervisor", "iface-id": "p 1:x"}}},
		{name: "failed", reply: rows(`[{"ofport":-1,"error":"could not open network device x (No such device)","external_ids":["map",[]]}]`),
			want: iface{Exists: true, OFPort: -1, Error: "could not open network device x (No such device)", ExternalID: map[string]string{}}},
		{name: "no ofport yet", reply: rows(`[{"ofport":["set",[]],"error":["set",[]],"external_ids":["map",[]]}]`),
			want: iface{Exists: true, ExternalID: map[string]string{}}},
		{name: "rpc error", reply: func(id json.RawMessage) string {
			return `{"id":` + string(id) + `,"error":"unknown database","result":null}`
		}, class: ErrCommand},
		{name: "op error", reply: func(id json.RawMessage) string {
			return `{"id":` + string(id) + `,"error":null,"result":[{"error":"syntax error","details":"bad column"}]}`
		}, class: ErrCommand},
		{name: "garbage", reply: func(json.RawMessage) string { return "}{" }, class: ErrCommand},
		{name: "closed", reply: func(json.RawMessage) string { return "" }, class: ErrUnavailable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, ok := newOVSDBLookup(fakeOVSDB(t, tc.echo, tc.reply), 5*time.Second)
			require.True(t, ok)
			got, err := l.lookup(t.Context(), "qvo1")
			if tc.class != nil {
				require.ErrorIs(t, err, tc.class)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestOVSDBLookupUnavailable(t *testing.T) {
	t.Run("no socket", func(t *testing.T) {
		l, _ := newOVSDBLookup("unix:"+filepath.Join(t.TempDir(), "db.sock"), time.Second)
		_, err := l.lookup(t.Context(), "qvo1")
		require.ErrorIs(t, err, ErrUnavailable)
		require.ErrorIs(t, err, network.ErrUnavailable)
	})
	t.Run("hung", func(t *testing.T) {
		// A server that accepts and never answers: the timeout ends the read.
		l, _ := newOVSDBLookup(fakeOVSDB(t, false, func(json.RawMessage) string { time.Sleep(2 * time.Second); return "" }), 100*time.Millisecond)
		_, err := l.lookup(t.Context(), "qvo1")
		require.ErrorIs(t, err, ErrUnavailable)
	})
	t.Run("context", func(t *testing.T) {
		l, _ := newOVSDBLookup(fakeOVSDB(t, false, func(json.RawMessage) string { time.Sleep(2 * time.Second); return "" }), 5*time.Second)
		ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
		defer cancel()
		_, err := l.lookup(ctx, "qvo1")
		require.ErrorIs(t, err, ErrUnavailable)
		require.ErrorIs(t, err, context.DeadlineExceeded)
	})
}

func TestNewOVSDBLookup(t *testing.T) {
	l, ok := newOVSDBLookup("unix:/run/openvswitch/db.sock", 0)
	require.True(t, ok)
	assert.Equal(t, ovsdbLookup{network: "unix", address: "/run/openvswitch/db.sock", timeout: DefaultTimeout}, l)
	l, ok = newOVSDBLookup("tcp:[::1]:6640", time.Second)
	require.True(t, ok)
	assert.Equal(t, ovsdbLookup{network: "tcp", address: "[::1]:6640", timeout: time.Second}, l)
	for _, bad := range []string{"ssl:1.2.3.4:6640", "unix:", "punix:/x", "/x/db.sock"} {
		_, ok := newOVSDBLookup(bad, 0)
		assert.False(t, ok, bad)
	}
	t.Setenv("OVS_RUNDIR", "/x/run")
	assert.Equal(t, "unix:/x/run/db.sock", defaultDB())
}

// TestNewLookup checks which reader a Driver gets: OVSDB on unix and tcp
// sockets (the default one included), ovs-vsctl find for other kinds of
// address and through an injected runner.
func TestNewLookup(t *testing.T) {
	t.Setenv("OVS_RUNDIR", "/x/run")
	for _, tc := range []struct {
		name string
		opts []Option
		want lookuper
	}{
		{"default", nil, ovsdbLookup{network: "unix", address: "/x/run/db.sock", timeout: DefaultTimeout}},
		{"unix", []Option{WithDB("unix:/y/db.sock"), WithTimeout(3 * time.Second)}, ovsdbLookup{network: "unix", address: "/y/db.sock", timeout: 3 * time.Second}},
		{"ssl", []Option{WithDB("ssl:192.0.2.1:6640")}, runnerLookup{Vsctl{DB: "ssl:192.0.2.1:6640"}}},
		{"runner", []Option{WithDB("unix:/y/db.sock"), WithRunner(newRecorder())}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := New(tc.opts...)
			require.NoError(t, err)
			if tc.want == nil {
				tc.want = runnerLookup{d.runner}
			}
			assert.Equal(t, tc.want, d.look)
		})
	}
}
