package networktest

import (
	"context"
	"fmt"
	"net/netip"
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

// port is the state of one port ID: whose it is, whether its host side is
// plugged, and where it is attached.
type port struct {
	instance string
	vif      network.VIF
	plugged  bool
	attached *network.Target
}

// Recorder is a stateful, in-memory network.VIFDriver that records its
// calls. It validates VIFs and targets like the real drivers, serves only
// the VIF types it was made for, and attaches only into namespaces it was
// told exist ([Recorder.AddNamespace]).
//
// It keeps device ownership as the real drivers do: the host device names
// of a plugged or attached VIF ([network.DeviceNames]) are its
// instance's and port's, and a VIF of another instance or port whose names
// clash with them, or with a device someone else made
// ([Recorder.AddHostDevice]), is [network.ErrDeviceConflict]; Detach and
// Unplug touch only the calling instance's own VIF. It is safe for
// concurrent use.
type Recorder struct {
	mu      sync.Mutex
	types   []network.VIFType
	ports   map[string]*port // by port ID
	devices map[string]bool  // host devices made by someone else
	ns      map[string]bool
	calls   []Call
	inject  map[Op]error
}

var _ network.VIFDriver = (*Recorder)(nil)

// NewRecorder returns a Recorder serving VIFs of the given types (none:
// "ovs" and "bridge").
func NewRecorder(types ...network.VIFType) *Recorder {
	if len(types) == 0 {
		types = []network.VIFType{network.VIFTypeOVS, network.VIFTypeBridge}
	}
	return &Recorder{
		types: types, ports: map[string]*port{}, devices: map[string]bool{},
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
	for id, p := range r.ports {
		if p.attached != nil && p.attached.NetNS == path {
			r.detach(id, p)
		}
	}
}

// AddHostDevice declares that a host device called name exists that the
// driver did not create (an operator's bridge, say).
func (r *Recorder) AddHostDevice(name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.devices[name] = true
}

// RemoveHostDevice removes the device name declared by AddHostDevice.
func (r *Recorder) RemoveHostDevice(name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.devices, name)
}

// HasHostDevice reports whether the device name declared by AddHostDevice
// still exists.
func (r *Recorder) HasHostDevice(name string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.devices[name]
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
	m := map[string]network.VIF{}
	for id, p := range r.ports {
		if p.plugged {
			m[id] = p.vif
		}
	}
	return m
}

// InstanceOf returns the instance whose VIF the port portID is (plugged or
// attached).
func (r *Recorder) InstanceOf(portID string) (string, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	p, ok := r.ports[portID]
	if !ok {
		return "", false
	}
	return p.instance, true
}

// Attached returns the attachments, by port ID.
func (r *Recorder) Attached() map[string]network.Target {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := map[string]network.Target{}
	for id, p := range r.ports {
		if p.attached != nil {
			m[id] = *p.attached
		}
	}
	return m
}

// GuestLinks returns the guest device names attached into the namespace
// path, sorted.
func (r *Recorder) GuestLinks(path string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var names []string
	for _, p := range r.ports {
		if p.attached != nil && p.attached.NetNS == path {
			names = append(names, p.attached.IfName)
		}
	}
	slices.Sort(names)
	return names
}

// HostState describes the host side: "plugged <id>" for each plugged VIF,
// "tap <id>" for each attached one and "device <name>" for each device
// declared by AddHostDevice, sorted.
func (r *Recorder) HostState() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var s []string
	for id, p := range r.ports {
		if p.plugged {
			s = append(s, "plugged "+id)
		}
		if p.attached != nil {
			s = append(s, "tap "+id)
		}
	}
	for name := range r.devices {
		s = append(s, "device "+name)
	}
	slices.Sort(s)
	return s
}

// Reachable reports whether a packet from the namespace from reaches the
// address to: from holds the guest end of an attached VIF, to is a fixed
// IP of another attached VIF, and both are on the same bridge.
func (r *Recorder) Reachable(from string, to netip.Addr) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, a := range r.ports {
		if a.attached == nil || a.attached.NetNS != from || !r.ns[from] {
			continue
		}
		for _, b := range r.ports {
			if b == a || b.attached == nil || !r.ns[b.attached.NetNS] || b.vif.Bridge != a.vif.Bridge {
				continue
			}
			for _, s := range b.vif.Subnets {
				if slices.Contains(s.IPs, to) {
					return true
				}
			}
		}
	}
	return false
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

// names are the host device names a VIF holds.
func names(vif network.VIF) []string {
	d, _ := network.DeviceNames(vif.ID)
	return []string{d.Tap, d.Bridge, d.VethBridge, d.VethOVS, d.Guest}
}

// checkOwner returns an error wrapping network.ErrDeviceConflict if vif's
// device names are held by someone else: a device made by someone else,
// or a VIF of another instance or port.
func (r *Recorder) checkOwner(instanceID string, vif network.VIF) error {
	mine := names(vif)
	for _, n := range mine {
		if r.devices[n] {
			return fmt.Errorf("%w: %s exists and was not created for this VIF", network.ErrDeviceConflict, n)
		}
	}
	for id, p := range r.ports {
		if id == vif.ID && p.instance == instanceID {
			continue
		}
		if names(p.vif)[0] == mine[0] {
			return fmt.Errorf("%w: %s is the device of port %s of instance %s", network.ErrDeviceConflict, mine[0], id, p.instance)
		}
	}
	return nil
}

// own returns vif's port of instanceID, or nil if the port is another
// instance's or unknown.
func (r *Recorder) own(instanceID string, vif network.VIF) *port {
	p := r.ports[vif.ID]
	if p == nil || p.instance != instanceID {
		return nil
	}
	return p
}

func (r *Recorder) detach(id string, p *port) {
	p.attached = nil
	if !p.plugged {
		delete(r.ports, id)
	}
}

// Plug records vif as plugged for instanceID.
func (r *Recorder) Plug(ctx context.Context, instanceID string, vif network.VIF) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := Call{Op: OpPlug, InstanceID: instanceID, VIF: vif, Err: r.check(OpPlug, vif)}
	if c.Err == nil {
		c.Err = ctx.Err()
	}
	if c.Err == nil {
		c.Err = r.checkOwner(instanceID, vif)
	}
	if c.Err == nil {
		p := r.own(instanceID, vif)
		if p == nil {
			p = &port{instance: instanceID}
			r.ports[vif.ID] = p
		}
		p.vif, p.plugged = vif, true
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
	if c.Err == nil {
		c.Err = r.checkOwner(instanceID, vif)
	}
	if c.Err == nil && !r.ns[target.NetNS] {
		c.Err = fmt.Errorf("%w: %s", network.ErrNamespaceGone, target.NetNS)
	}
	if c.Err == nil {
		for id, p := range r.ports {
			if id != vif.ID && p.attached != nil && p.attached.NetNS == target.NetNS && p.attached.IfName == target.IfName {
				c.Err = fmt.Errorf("%w: %s exists in %s", network.ErrDeviceConflict, target.IfName, target.NetNS)
			}
		}
	}
	if c.Err == nil {
		p := r.own(instanceID, vif)
		if p == nil {
			p = &port{instance: instanceID, vif: vif}
			r.ports[vif.ID] = p
		}
		p.attached = &target
	}
	return r.record(c)
}

// Detach removes vif's attachment if it is instanceID's. Gone is success.
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
		if p := r.own(instanceID, vif); p != nil {
			r.detach(vif.ID, p)
		}
	}
	return r.record(c)
}

// Unplug removes vif's host side (and so its attachment) if it is
// instanceID's. Gone is success.
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
	if c.Err == nil && r.own(instanceID, vif) != nil {
		delete(r.ports, vif.ID)
	}
	return r.record(c)
}
