package ovs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"
)

// lookuper reads one interface of the Open vSwitch database by name; a
// missing one is Exists false. The real one is [ovsdbLookup]; with
// [WithRunner] lookups go through the runner ([runnerLookup]).
type lookuper interface {
	lookup(ctx context.Context, name string) (iface, error)
}

// runnerLookup reads interfaces with ovs-vsctl find through a [Runner].
type runnerLookup struct{ r Runner }

func (l runnerLookup) lookup(ctx context.Context, name string) (iface, error) {
	return getIface(ctx, l.r, name)
}

// ovsdbLookup reads interfaces with one OVSDB JSON-RPC transaction (RFC
// 7047 "transact" with a "select" on the Interface table) on the database
// socket: a connection per lookup, well under a millisecond, where an
// ovs-vsctl run costs ten or more (process start and its fetch of the
// whole database).
type ovsdbLookup struct {
	network, address string // from an address such as "unix:/run/openvswitch/db.sock"
	timeout          time.Duration
}

var (
	_ lookuper = ovsdbLookup{}
	_ lookuper = runnerLookup{}
)

// ovsdbDatabase is the database that holds the Interface table.
const ovsdbDatabase = "Open_vSwitch"

// defaultDB is the database ovs-vsctl talks to without --db:
// unix:$OVS_RUNDIR/db.sock, with /var/run/openvswitch as the run directory.
func defaultDB() string {
	dir := os.Getenv("OVS_RUNDIR")
	if dir == "" {
		dir = "/var/run/openvswitch"
	}
	return "unix:" + filepath.Join(dir, "db.sock")
}

// newOVSDBLookup returns the lookup for the database address addr
// ("unix:PATH" or "tcp:HOST:PORT"); ok is false for other kinds (such as
// ssl:, which needs ovs-vsctl's certificates).
func newOVSDBLookup(addr string, timeout time.Duration) (l ovsdbLookup, ok bool) {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	kind, rest, _ := strings.Cut(addr, ":")
	switch {
	case kind == "unix" && rest != "":
		return ovsdbLookup{network: "unix", address: rest, timeout: timeout}, true
	case kind == "tcp" && rest != "":
		// OVS writes an IPv6 address as tcp:[::1]:6640, as Go does.
		return ovsdbLookup{network: "tcp", address: rest, timeout: timeout}, true
	}
	return ovsdbLookup{}, false
}

var rpcID atomic.Uint64

// rpcMessage is a JSON-RPC 1.0 message of OVSDB: a request or
// notification (Method set) or a response (Result or Error set).
type rpcMessage struct {
	Method string            `json:"method,omitempty"`
	Params []json.RawMessage `json:"params,omitempty"`
	Result json.RawMessage   `json:"result,omitempty"`
	Error  json.RawMessage   `json:"error,omitempty"`
	ID     json.RawMessage   `json:"id"`
}

// opResult is the result of one operation of a transaction.
type opResult struct {
	Rows    []map[string]json.RawMessage `json:"rows"`
	Error   string                       `json:"error"`
	Details string                       `json:"details"`
}

func (l ovsdbLookup) lookup(ctx context.Context, name string) (iface, error) {
	i, err := l.selectIface(ctx, name)
	if err != nil {
		return iface{}, fmt.Errorf("ovsdb %s:%s: select Interface %s: %w", l.network, l.address, name, err)
	}
	return i, nil
}

// unavailable marks err as Open vSwitch not answering.
func unavailable(err error) error { return fmt.Errorf("%w: %w", ErrUnavailable, err) }

func (l ovsdbLookup) selectIface(ctx context.Context, name string) (iface, error) {
	if err := ctx.Err(); err != nil {
		return iface{}, unavailable(context.Cause(ctx))
	}
	dl := time.Now().Add(l.timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(dl) {
		dl = d
	}
	dctx, cancel := context.WithDeadline(ctx, dl)
	defer cancel()
	var dialer net.Dialer
	conn, err := dialer.DialContext(dctx, l.network, l.address)
	if err != nil {
		return iface{}, l.ioError(ctx, err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(dl)
	// The caller's context can end the exchange before the deadline.
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	id := rpcID.Add(1)
	req := map[string]any{
		"method": "transact",
		"params": []any{ovsdbDatabase, map[string]any{
			"op":      "select",
			"table":   "Interface",
			"where":   [][]any{{"name", "==", name}},
			"columns": []string{"ofport", "error", "external_ids"},
		}},
		"id": id,
	}
	enc, dec := json.NewEncoder(conn), json.NewDecoder(conn)
	if err := enc.Encode(req); err != nil {
		return iface{}, l.ioError(ctx, err)
	}
	for {
		var msg rpcMessage
		if err := dec.Decode(&msg); err != nil {
			var syn *json.SyntaxError
			if errors.As(err, &syn) {
				return iface{}, fmt.Errorf("%w: decode reply: %w", ErrCommand, err)
			}
			return iface{}, l.ioError(ctx, err)
		}
		if msg.Method == "echo" {
			// The server's keepalive: answered with the same params.
			if err := enc.Encode(map[string]any{"result": msg.Params, "error": nil, "id": msg.ID}); err != nil {
				return iface{}, l.ioError(ctx, err)
			}
			continue
		}
		if msg.Method != "" || string(msg.ID) != fmt.Sprint(id) {
			continue // a notification or a reply to something else
		}
		return parseSelectReply(msg)
	}
}

// ioError classifies a failure to reach or read the database: it did not
// answer (or the caller's context ended), which is [ErrUnavailable].
func (l ovsdbLookup) ioError(ctx context.Context, err error) error {
	if d, ok := ctx.Deadline(); ok && !time.Now().Before(d) {
		// The socket deadline was the context's: its Done follows at once.
		<-ctx.Done()
	}
	if ctx.Err() != nil {
		return unavailable(errors.Join(context.Cause(ctx), err))
	}
	return unavailable(err)
}

// parseSelectReply decodes the reply to a transaction of one select of
// the columns ofport, error and external_ids.
func parseSelectReply(msg rpcMessage) (iface, error) {
	if len(msg.Error) > 0 && string(msg.Error) != "null" {
		return iface{}, fmt.Errorf("%w: ovsdb error %s", ErrCommand, msg.Error)
	}
	var results []opResult
	if err := json.Unmarshal(msg.Result, &results); err != nil {
		return iface{}, fmt.Errorf("%w: decode reply: %w", ErrCommand, err)
	}
	if len(results) == 0 {
		return iface{}, fmt.Errorf("%w: empty transaction reply", ErrCommand)
	}
	res := results[0]
	if res.Error != "" {
		return iface{}, fmt.Errorf("%w: ovsdb %s: %s", ErrCommand, res.Error, res.Details)
	}
	if len(res.Rows) == 0 {
		return iface{}, nil
	}
	row := res.Rows[0]
	return decodeIface(row["ofport"], row["error"], row["external_ids"]), nil
}

// decodeIface decodes the OVSDB values of the columns ofport (an optional
// integer), error (an optional string) and external_ids (a string map).
// An unset optional column is ["set",[]]; a map is ["map",[[k,v]...]].
func decodeIface(ofport, errCol, ids json.RawMessage) iface {
	i := iface{Exists: true, ExternalID: map[string]string{}}
	_ = json.Unmarshal(ofport, &i.OFPort)
	_ = json.Unmarshal(errCol, &i.Error)
	var m []json.RawMessage
	if err := json.Unmarshal(ids, &m); err == nil && len(m) == 2 {
		var pairs [][2]string
		if err := json.Unmarshal(m[1], &pairs); err == nil {
			for _, p := range pairs {
				i.ExternalID[p[0]] = p[1]
			}
		}
	}
	return i
}
