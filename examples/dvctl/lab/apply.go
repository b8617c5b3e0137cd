package lab

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/dockervisor/dockervisor/hypervisor"
)

// Action is one change Up or Down made, or "unchanged".
type Action struct {
	Kind   string `json:"kind"`   // "instance"
	Name   string `json:"name"`   // the name in the lab file
	ID     string `json:"id"`     // the resource's ID
	Action string `json:"action"` // created, replaced, started, unpaused, restored, removed, destroyed; unchanged and absent change nothing
}

// Options tunes Up and Down.
type Options struct {
	// StateDir holds the labs' state files.
	StateDir string
	// Parallel bounds the instances made at once (default 4).
	Parallel int
	// Progress, if set, is called after each action.
	Progress func(Action)
	// Net is the VIFRouter of the Driver that Up and Down are given, whose
	// Firewall they sync (the Driver must use it as its VIF driver and
	// port observer). Nil makes one for the call, which is right for a
	// Driver that does not filter ports itself.
	Net *VIFRouter
	// Self is the command that runs this program (default: its
	// executable), which Up runs as `Self lab serve-metadata DIR` for a
	// lab with networks with dhcp (see ServeMetadata).
	Self []string
}

func (o Options) net() (*VIFRouter, func() error) {
	if o.Net != nil {
		return o.Net, func() error { return nil }
	}
	r := NewVIFRouter(o.StateDir, nil)
	return r, r.Close
}

func (o Options) parallel() int {
	if o.Parallel <= 0 {
		return 4
	}
	return o.Parallel
}

// Up brings the lab of f up on drv, idempotently: see the package docs.
// A failed Up leaves what it made recorded in the state file, for Down.
func Up(ctx context.Context, drv hypervisor.Lifecycle, f *File, opts Options) (_ []Action, err error) {
	st, _, err := LoadState(opts.StateDir, f.Name)
	if err != nil {
		return nil, err
	}
	if err := st.Save(); err != nil {
		return nil, err
	}
	waves, err := f.Waves()
	if err != nil {
		return nil, err
	}
	var (
		mu      sync.Mutex
		actions []Action
	)
	record := func(a Action) {
		mu.Lock()
		actions = append(actions, a)
		mu.Unlock()
		if opts.Progress != nil {
			opts.Progress(a)
		}
	}
	netr, closeNet := opts.net()
	defer func() { err = errors.Join(err, closeNet()) }()
	if f.HasNetworks() {
		// Each resource is recorded before it is made, so Down finds it.
		if err := st.SetNetns(NetnsName(f.Name)); err != nil {
			return nil, err
		}
		created, err := ensureNetnsCreated(st.Netns)
		if err != nil {
			return nil, err
		}
		if created {
			record(Action{Kind: "netns", Name: st.Netns, ID: "/run/netns/" + st.Netns, Action: "created"})
		}
	}
	if err := upOVS(ctx, f, st, opts.StateDir, record); err != nil {
		return actions, err
	}
	// The networks' DHCP servers and metadata service come before the
	// instances, which take their leases and register their metadata.
	if err := upServices(ctx, f, st, netr, opts, record); err != nil {
		return actions, err
	}
	groups, err := f.groups()
	if err != nil {
		return nil, err
	}
	ports, err := f.filteredPorts()
	if err != nil {
		return nil, err
	}
	fwBefore, _ := json.Marshal([]any{st.Groups, st.Ports})
	if err := st.Update(func(s *State) { s.Groups, s.Ports = groups, ports }); err != nil {
		return nil, err
	}
	fwAfter, _ := json.Marshal([]any{st.Groups, st.Ports})
	fwChanged := !bytes.Equal(fwBefore, fwAfter)
	// Instances of the lab that the file no longer names go first, so their
	// resources are free for the new ones.
	existing, err := drv.List(ctx, hypervisor.ListOptions{Labels: map[string]string{LabelLab: f.Name}})
	if err != nil {
		return nil, err
	}
	for _, in := range existing {
		if _, ok := f.Instances[in.Labels[LabelInstance]]; ok && in.ID == f.InstanceID(in.Labels[LabelInstance]) {
			continue
		}
		if err := drv.Destroy(ctx, in.ID); err != nil {
			return actions, err
		}
		if err := st.RemoveInstance(in.ID); err != nil {
			return actions, err
		}
		record(Action{Kind: "instance", Name: in.Labels[LabelInstance], ID: in.ID, Action: "removed"})
	}
	for _, wave := range waves {
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(opts.parallel())
		for _, name := range wave {
			g.Go(func() error {
				act, err := ensureInstance(gctx, drv, f, name, st)
				if err != nil {
					return fmt.Errorf("instance %s: %w", name, err)
				}
				record(act)
				return nil
			})
		}
		if err := g.Wait(); err != nil {
			return actions, err
		}
	}
	if err := upNetwork(ctx, f, st, netr, fwChanged, record); err != nil {
		return actions, err
	}
	return actions, nil
}

// ensureInstance makes the instance as the file says and running.
func ensureInstance(ctx context.Context, drv hypervisor.Lifecycle, f *File, name string, st *State) (Action, error) {
	spec := f.Spec(name)
	act := Action{Kind: "instance", Name: name, ID: spec.ID, Action: "unchanged"}
	info, err := drv.Info(ctx, spec.ID)
	switch {
	case errors.Is(err, hypervisor.ErrNotFound):
		act.Action = "created"
	case err != nil:
		return act, err
	case info.Labels[LabelSpec] != spec.Labels[LabelSpec] || info.Labels[LabelLab] != f.Name:
		if err := drv.Destroy(ctx, spec.ID); err != nil {
			return act, err
		}
		act.Action = "replaced"
	default:
		switch info.State {
		case hypervisor.StateRunning:
			return act, st.AddInstance(spec.ID)
		case hypervisor.StatePaused:
			act.Action = "unpaused"
			err = drv.Unpause(ctx, spec.ID)
		case hypervisor.StateSoftDeleted:
			act.Action = "restored"
			err = drv.Restore(ctx, spec.ID)
		default:
			act.Action = "started"
			err = drv.PowerOn(ctx, spec.ID)
		}
		if err == nil {
			err = st.AddInstance(spec.ID)
		}
		return act, err
	}
	if err := st.AddInstance(spec.ID); err != nil {
		return act, err
	}
	_, err = drv.Spawn(ctx, spec)
	return act, err
}

// Down removes every resource of lab name that the state file records or
// that carries the lab's label, and then the state file. A lab that is not
// up is no error.
func Down(ctx context.Context, drv hypervisor.Lifecycle, name string, opts Options) ([]Action, error) {
	st, _, err := LoadState(opts.StateDir, name)
	if err != nil {
		return nil, err
	}
	ids := slices.Clone(st.Instances)
	names := map[string]string{}
	exists := map[string]bool{}
	labelled, err := drv.List(ctx, hypervisor.ListOptions{Labels: map[string]string{LabelLab: name}})
	if err != nil {
		return nil, err
	}
	for _, in := range labelled {
		names[in.ID] = in.Labels[LabelInstance]
		exists[in.ID] = true
		if !slices.Contains(ids, in.ID) {
			ids = append(ids, in.ID)
		}
	}
	var (
		mu      sync.Mutex
		actions []Action
		errs    []error
	)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(opts.parallel())
	for _, id := range ids {
		g.Go(func() error {
			err := drv.Destroy(gctx, id)
			if err == nil {
				err = st.RemoveInstance(id)
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return nil
			}
			a := Action{Kind: "instance", Name: names[id], ID: id, Action: "destroyed"}
			if !exists[id] {
				a.Action = "absent" // recorded by an Up that failed before making it
			}
			actions = append(actions, a)
			if opts.Progress != nil {
				opts.Progress(a)
			}
			return nil
		})
	}
	_ = g.Wait()
	if err := errors.Join(errs...); err != nil {
		return actions, err
	}
	record := func(a Action) {
		actions = append(actions, a)
		if opts.Progress != nil {
			opts.Progress(a)
		}
	}
	// The bridges, router legs and tables live in the namespaces and go
	// with them; the services, floating IPs, the firewall and the switch
	// are removed first all the same, so that each step is seen to work.
	if err := downServices(ctx, st, opts, record); err != nil {
		return actions, err
	}
	if err := downNetwork(ctx, st, opts, record); err != nil {
		return actions, err
	}
	return actions, st.Remove()
}

// InstanceStatus is one instance of a lab as Status reports it.
type InstanceStatus struct {
	Name    string `json:"name"`
	ID      string `json:"id"`
	State   string `json:"state"` // "missing" when the lab names it and it does not exist
	Image   string `json:"image"`
	Changed bool   `json:"changed,omitempty"` // its spec differs from the file's
}

// Status reports each instance the file names, and any other instance
// carrying the lab's label ("extra").
func Status(ctx context.Context, drv hypervisor.Lifecycle, f *File) ([]InstanceStatus, error) {
	list, err := drv.List(ctx, hypervisor.ListOptions{Labels: map[string]string{LabelLab: f.Name}})
	if err != nil {
		return nil, err
	}
	byID := map[string]hypervisor.Instance{}
	for _, in := range list {
		byID[in.ID] = in
	}
	var out []InstanceStatus
	for _, name := range f.InstanceNames() {
		spec := f.Spec(name)
		s := InstanceStatus{Name: name, ID: spec.ID, State: "missing", Image: spec.Image}
		if in, ok := byID[spec.ID]; ok {
			s.State = in.State.String()
			s.Changed = in.Labels[LabelSpec] != spec.Labels[LabelSpec]
			delete(byID, spec.ID)
		}
		out = append(out, s)
	}
	for _, in := range list {
		if _, ok := byID[in.ID]; ok {
			out = append(out, InstanceStatus{Name: in.Labels[LabelInstance], ID: in.ID, State: "extra: " + in.State.String(), Image: in.Image})
		}
	}
	return out, nil
}
