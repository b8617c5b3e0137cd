package ovs

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
)

// recorder is a recording, stateful fake [Runner]: it keeps a small table
// of interfaces (name → ofport, error, external-ids), understands the
// commands the driver issues (add-port with set Interface, find, del-port)
// and records every command line. A missing device can be simulated with
// failDevice; an unreachable database with down.
type recorder struct {
	mu         sync.Mutex
	calls      [][]string
	ifaces     map[string]*fakeIface
	bridges    map[string]bool
	failDevice map[string]bool // add-port of these names gives ofport -1
	down       bool            // every command fails as ErrUnavailable
}

type fakeIface struct {
	bridge string
	ofport int
	err    string
	ids    map[string]string
}

func newRecorder(bridges ...string) *recorder {
	r := &recorder{ifaces: map[string]*fakeIface{}, bridges: map[string]bool{}, failDevice: map[string]bool{}}
	for _, b := range bridges {
		r.bridges[b] = true
	}
	return r
}

func (r *recorder) Calls() [][]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.calls)
}

// writes are the recorded commands that change the database.
func (r *recorder) writes() [][]string {
	var w [][]string
	for _, c := range r.Calls() {
		if !slices.Contains(c, "find") {
			w = append(w, c)
		}
	}
	return w
}

func (r *recorder) Run(ctx context.Context, args ...string) ([]byte, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, slices.Clone(args))
	if r.down || ctx.Err() != nil {
		return nil, classify(ctx, args, "ovs-vsctl: unix:/x/db.sock: database connection failed (No such file or directory)", fmt.Errorf("exit status 1"))
	}
	switch {
	case slices.Contains(args, "find"):
		name := strings.TrimPrefix(args[len(args)-1], "name=")
		_ = json.Unmarshal([]byte(name), &name)
		i, ok := r.ifaces[name]
		if !ok {
			return []byte(`{"data":[],"headings":["ofport","error","external_ids"]}`), nil
		}
		var pairs [][2]string
		for k, v := range i.ids {
			pairs = append(pairs, [2]string{k, v})
		}
		row := []any{i.ofport, []any{"set", []any{}}, []any{"map", pairs}}
		if i.err != "" {
			row[1] = i.err
		}
		return json.Marshal(map[string]any{"data": [][]any{row}, "headings": []string{"ofport", "error", "external_ids"}})
	case slices.Contains(args, "add-port"):
		at := slices.Index(args, "add-port")
		br, name := args[at+1], args[at+2]
		if !r.bridges[br] {
			return nil, classify(ctx, args, "ovs-vsctl: no bridge named "+br, fmt.Errorf("exit status 1"))
		}
		i, ok := r.ifaces[name]
		if !ok {
			i = &fakeIface{bridge: br, ofport: len(r.ifaces) + 1, ids: map[string]string{}}
			if r.failDevice[name] {
				i.ofport, i.err = -1, "could not open network device "+name+" (No such device)"
			}
			r.ifaces[name] = i
			if i.ofport < 0 {
				for _, a := range args[at:] {
					if kv, ok := strings.CutPrefix(a, "external-ids:"); ok {
						k, v, _ := strings.Cut(kv, "=")
						_ = json.Unmarshal([]byte(v), &v)
						i.ids[k] = v
					}
				}
				return nil, &Error{Args: args, Stderr: "ovs-vsctl: Error detected while setting up '" + name + "'", Class: ErrPortFailed, Err: errSetup}
			}
		}
		for _, a := range args[at:] {
			kv, ok := strings.CutPrefix(a, "external-ids:")
			if !ok {
				continue
			}
			k, v, _ := strings.Cut(kv, "=")
			_ = json.Unmarshal([]byte(v), &v) // quoted or bare
			i.ids[k] = v
		}
		return nil, nil
	case slices.Contains(args, "del-port"):
		delete(r.ifaces, args[len(args)-1])
		return nil, nil
	}
	return nil, fmt.Errorf("fake runner: unknown command %q", args)
}
