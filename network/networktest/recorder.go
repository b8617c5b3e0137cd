package networktest

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/dockervisor/dockervisor/network"
)

// Op names a VIFDriver method.
type Op string

// The VIFDriver methods.
const (
	OpPlug   Op = "plug"
	OpAttach Op = "attach"
	OpDetach Op = "detach"
	OpUnplug Op = "unplug"
)

// Call is one recorded call.
type Call struct {
	Op         Op
	InstanceID string
	VIF        network.VIF
	Target     network.Target // attach and detach only
	Err        error
}

// Recorder is a stateful, in-memory network.VIFDriver that records its
// calls. It validates VIFs and targets like the real drivers, serves only
// the VIF types it was made for, and attaches only into namespaces it was
// told exist ([Recorder.AddNamespace]). It is safe for concurrent use.
type Recorder struct {
	mu       sync.Mutex
	types    []network.VIFType
	plugged  map[string]network.VIF
	attached map[string]network.Target // by port ID
	ns       map[string]bool
	calls    []Call
	inject   map[Op]error
}

var _ network.VIFDriver = (*Recorder)(nil)

// NewRecorder returns a Recorder serving VIFs of the given types (none:
// "ovs" and "bridge").
func NewRecorder(types ...network.VIFType) *Recorder {
	if len(types) == 0 {
		types = []network.VIFType{network.VIFTypeOVS, network.VIFTypeBridge}
	}
	return &Recorder{
		types: types, plugged: map[string]network.VIF{}, attached: map[string]network.Target{},
		ns: map[string]bool{}, inject: map[Op]error{},
	}
}

// AddNamespace declares the namespace path alive (an instance started).
func (r *Recorder) AddNamespace(path string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ns[path] = true
}

// RemoveNamespace declares the namespace path gone (the instance's process
// ended): the guest ends attached into it go with it.
func (r *Recorder) RemoveNamespace(path string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.ns, path)
	for id, t := range r.attached {
		if t.NetNS == path {
			delete(r.attached, id)
		}
	}
}

// FailNext makes the next call of op return err, changing nothing.
func (r *Recorder) FailNext(op Op, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.inject[op] = err
}

// Calls returns the calls so far, in order.
func (r *Recorder) Calls() []Call {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.calls)
}

// Plugged returns the plugged VIFs, by port ID.
func (r *Recorder) Plugged() map[string]network.VIF {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := make(map[string]network.VIF, len(r.plugged))
	for k, v := range r.plugged {
		m[k] = v
	}
	return m
}

// Attached returns the attachments, by port ID.
func (r *Recorder) Attached() map[string]network.Target {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := make(map[string]network.Target, len(r.attached))
	for k, v := range r.attached {
		m[k] = v
	}
	return m
}

// GuestLinks returns the guest device names attached into the namespace
// path, sorted.
func (r *Recorder) GuestLinks(path string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var names []string
	for _, t := range r.attached {
		if t.NetNS == path {
			names = append(names, t.IfName)
		}
	}
	slices.Sort(names)
	return names
}

// HostState describes the host side: "plugged <id>" for each plugged VIF
// and "tap <id>" for each attached one, sorted.
func (r *Recorder) HostState() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var s []string
	for id := range r.plugged {
		s = append(s, "plugged "+id)
	}
	for id := range r.attached {
		s = append(s, "tap "+id)
	}
	slices.Sort(s)
	return s
}

func (r *Recorder) record(c Call) error {
	r.calls = append(r.calls, c)
	return c.Err
}

func (r *Recorder) check(op Op, vif network.VIF) error {
	if err, ok := r.inject[op]; ok {
		delete(r.inject, op)
		return err
	}
	if err := vif.Validate(); err != nil {
		return err
	}
	if !slices.Contains(r.types, vif.Type) {
		return fmt.Errorf("%w: %q", network.ErrUnsupportedVIFType, vif.Type)
	}
	return nil
}

// Plug records vif as plugged.
func (r *Recorder) Plug(ctx context.Context, instanceID string, vif network.VIF) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := Call{Op: OpPlug, InstanceID: instanceID, VIF: vif, Err: r.check(OpPlug, vif)}
	if c.Err == nil {
		c.Err = ctx.Err()
	}
	if c.Err == nil {
		r.plugged[vif.ID] = vif
	}
	return r.record(c)
}

// Attach records vif as attached into target, replacing an earlier
// attachment of vif.
func (r *Recorder) Attach(ctx context.Context, instanceID string, vif network.VIF, target network.Target) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := Call{Op: OpAttach, InstanceID: instanceID, VIF: vif, Target: target, Err: r.check(OpAttach, vif)}
	if c.Err == nil {
		c.Err = target.Validate()
	}
	if c.Err == nil {
		c.Err = ctx.Err()
	}
	if c.Err == nil && !r.ns[target.NetNS] {
		c.Err = fmt.Errorf("%w: %s", network.ErrNamespaceGone, target.NetNS)
	}
	if c.Err == nil {
		for id, t := range r.attached {
			if id != vif.ID && t.NetNS == target.NetNS && t.IfName == target.IfName {
				c.Err = fmt.Errorf("%w: %s exists in %s", network.ErrDeviceConflict, target.IfName, target.NetNS)
			}
		}
	}
	if c.Err == nil {
		r.attached[vif.ID] = target
	}
	return r.record(c)
}

// Detach removes vif's attachment. Gone is success.
func (r *Recorder) Detach(ctx context.Context, instanceID string, vif network.VIF, target network.Target) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := Call{Op: OpDetach, InstanceID: instanceID, VIF: vif, Target: target}
	if err, ok := r.inject[OpDetach]; ok {
		delete(r.inject, OpDetach)
		c.Err = err
	} else if _, err := network.DeviceNames(vif.ID); err != nil {
		c.Err = err
	}
	if c.Err == nil {
		delete(r.attached, vif.ID)
	}
	return r.record(c)
}

// Unplug removes vif's host side (and so its attachment). Gone is success.
func (r *Recorder) Unplug(ctx context.Context, instanceID string, vif network.VIF) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := Call{Op: OpUnplug, InstanceID: instanceID, VIF: vif}
	if err, ok := r.inject[OpUnplug]; ok {
		delete(r.inject, OpUnplug)
		c.Err = err
	} else if _, err := network.DeviceNames(vif.ID); err != nil {
		c.Err = err
	}
	if c.Err == nil {
		delete(r.plugged, vif.ID)
		delete(r.attached, vif.ID)
	}
	return r.record(c)
}
