package lab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/dockervisor/dockervisor/network"
	"github.com/dockervisor/dockervisor/network/dhcp"
	"github.com/dockervisor/dockervisor/network/linuxbridge"
	"github.com/dockervisor/dockervisor/network/nldump"
	"github.com/dockervisor/dockervisor/network/ovs"
	"github.com/dockervisor/dockervisor/network/secgroup"
)

// VIFRouter is the network.VIFDriver a Driver is given when labs are used:
// the VIFs of a lab's instance are plugged in that lab's host namespace
// (found through the labs' state files) by a Linux bridge driver, or by an
// Open vSwitch driver on the lab's private switch, and the VIFs of any
// other instance by the fallback driver. Every process that drives a lab's
// instances (a start re-attaches their VIFs) uses one.
//
// It is also the Driver's port observer (docker.WithPortObserver): a lab
// port with security groups is filtered by the lab's Firewall as soon as
// its host side is plugged, before the instance is attached to it, and its
// filter goes before it is unplugged. The Firewall of a process is synced
// from the lab's state file before its first change, and again whenever
// the state file's security groups or ports changed.
type VIFRouter struct {
	stateDir string
	fallback network.VIFDriver

	mu   sync.Mutex
	nets map[string]*labNet // by namespace name
}

var _ network.VIFDriver = (*VIFRouter)(nil)

// labNet is what a process holds for one lab namespace.
type labNet struct {
	netns   string
	disp    *network.Dispatcher
	closers []func() error
	ovsDir  string

	mu      sync.Mutex
	fw      *secgroup.Firewall
	fwState string // hash of the groups and ports the Firewall was synced with
}

// NewVIFRouter returns a VIFRouter over the lab state files in stateDir.
// fallback may be nil: then a VIF of an instance outside every lab is
// network.ErrUnsupportedVIFType.
func NewVIFRouter(stateDir string, fallback network.VIFDriver) *VIFRouter {
	return &VIFRouter{stateDir: stateDir, fallback: fallback, nets: map[string]*labNet{}}
}

// lab returns the lab state recording instanceID, or nil.
func (r *VIFRouter) lab(instanceID string) (*State, error) {
	names, err := ListStates(r.stateDir)
	if err != nil {
		return nil, err
	}
	for _, n := range names {
		st, _, err := LoadState(r.stateDir, n)
		if err != nil || st.Netns == "" || !slices.Contains(st.Instances, instanceID) {
			continue
		}
		return st, nil
	}
	return nil, nil
}

// net returns the labNet of st's namespace, made on first use.
func (r *VIFRouter) net(st *State) (*labNet, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if ln, ok := r.nets[st.Netns]; ok && ln.ovsDir == st.OVSDir {
		return ln, nil
	} else if ok {
		delete(r.nets, st.Netns)
		_ = ln.close()
	}
	path := "/run/netns/" + st.Netns
	ln := &labNet{netns: st.Netns, disp: network.NewDispatcher(), ovsDir: st.OVSDir}
	lb, err := linuxbridge.New(linuxbridge.WithHostNetNS(path))
	if err != nil {
		return nil, err
	}
	ln.closers = append(ln.closers, lb.Close)
	ln.disp.Handle(network.VIFTypeBridge, lb)
	if st.OVSDir != "" {
		db, err := ovsDB(st.OVSDir)
		if err != nil {
			return nil, errors.Join(err, ln.close())
		}
		od, err := ovs.New(ovs.WithHostNetNS(path), ovs.WithDB(db))
		if err != nil {
			return nil, errors.Join(err, ln.close())
		}
		ln.disp.Handle(network.VIFTypeOVS, od)
	}
	fw, err := secgroup.New(secgroup.WithHostNetNS(path))
	if err != nil {
		return nil, errors.Join(err, ln.close())
	}
	ln.fw = fw
	ln.closers = append(ln.closers, fw.Close)
	r.nets[st.Netns] = ln
	return ln, nil
}

func (ln *labNet) close() error {
	var errs []error
	for _, c := range ln.closers {
		errs = append(errs, c())
	}
	return errors.Join(errs...)
}

// firewall returns the lab's Firewall, synced with st's groups and those of
// st's ports whose bridge exists (the others are not plugged yet), or with
// all of st's ports when all is set.
func (ln *labNet) firewall(ctx context.Context, st *State, all bool) (*secgroup.Firewall, error) {
	b, err := json.Marshal([]any{st.Groups, st.Ports}) // pointers in rules: compare by value
	if err != nil {
		return nil, err
	}
	key := hash(string(b))
	if !all && ln.fwState == key {
		return ln.fw, nil
	}
	ports := st.Ports
	if !all {
		if ports, err = pluggedPorts(st.Netns, st.Ports); err != nil {
			return nil, err
		}
	}
	if err := ln.fw.Sync(ctx, st.Groups, ports); err != nil {
		return nil, err
	}
	ln.fwState = key
	return ln.fw, nil
}

// pluggedPorts returns the ports whose bridge exists in the namespace.
func pluggedPorts(nsName string, ports []secgroup.Port) ([]secgroup.Port, error) {
	if len(ports) == 0 {
		return nil, nil
	}
	ns, err := netns.GetFromName(nsName)
	if err != nil {
		return nil, fmt.Errorf("lab: namespace %s: %w", nsName, err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return nil, err
	}
	defer h.Close()
	var out []secgroup.Port
	for _, p := range ports {
		if _, err := nldump.LinkByName(h, p.Bridge); err == nil {
			out = append(out, p)
		}
	}
	return out, nil
}

// syncFirewall brings the lab's Firewall to st's whole intended state.
func (r *VIFRouter) syncFirewall(ctx context.Context, st *State) error {
	ln, err := r.net(st)
	if err != nil {
		return err
	}
	ln.mu.Lock()
	defer ln.mu.Unlock()
	_, err = ln.firewall(ctx, st, true)
	return err
}

// teardownFirewall removes the lab's firewall tables.
func (r *VIFRouter) teardownFirewall(ctx context.Context, st *State) error {
	ns, err := netns.GetFromName(st.Netns)
	if err != nil {
		return nil // gone with the namespace
	}
	ns.Close()
	ln, err := r.net(st)
	if err != nil {
		return err
	}
	ln.mu.Lock()
	defer ln.mu.Unlock()
	ln.fwState = ""
	return ln.fw.Teardown(ctx)
}

func (r *VIFRouter) driverFor(instanceID string) (network.VIFDriver, error) {
	st, err := r.lab(instanceID)
	if err != nil {
		return nil, err
	}
	if st != nil {
		ln, err := r.net(st)
		if err != nil {
			return nil, err
		}
		return ln.disp, nil
	}
	if r.fallback == nil {
		return nil, errors.Join(network.ErrUnsupportedVIFType, errors.New("lab: instance "+instanceID+" is in no lab and no VIF driver is configured for it"))
	}
	return r.fallback, nil
}

// Plug implements network.VIFDriver.
func (r *VIFRouter) Plug(ctx context.Context, instanceID string, vif network.VIF) error {
	d, err := r.driverFor(instanceID)
	if err != nil {
		return err
	}
	return d.Plug(ctx, instanceID, vif)
}

// Attach implements network.VIFDriver.
func (r *VIFRouter) Attach(ctx context.Context, instanceID string, vif network.VIF, target network.Target) error {
	d, err := r.driverFor(instanceID)
	if err != nil {
		return err
	}
	return d.Attach(ctx, instanceID, vif, target)
}

// Detach implements network.VIFDriver.
func (r *VIFRouter) Detach(ctx context.Context, instanceID string, vif network.VIF, target network.Target) error {
	d, err := r.driverFor(instanceID)
	if err != nil {
		return err
	}
	return d.Detach(ctx, instanceID, vif, target)
}

// Unplug implements network.VIFDriver.
func (r *VIFRouter) Unplug(ctx context.Context, instanceID string, vif network.VIF) error {
	d, err := r.driverFor(instanceID)
	if err != nil {
		return err
	}
	return d.Unplug(ctx, instanceID, vif)
}

// PortPlugged filters a lab port that has security groups, once its host
// side exists, and gives its network's DHCP server its host entry (the
// Docker backend's PortObserver).
func (r *VIFRouter) PortPlugged(ctx context.Context, instanceID string, vif network.VIF) error {
	if err := r.withDHCP(instanceID, vif, func(s *dhcp.Server, h dhcp.Host) error { return s.AddHost(ctx, h) }); err != nil {
		return err
	}
	return r.withPortFirewall(ctx, instanceID, vif, func(fw *secgroup.Firewall, p secgroup.Port) error { return fw.ApplyPort(ctx, p) })
}

// PortUnplugging removes a lab port's filter and host entry before its
// host side goes.
func (r *VIFRouter) PortUnplugging(ctx context.Context, instanceID string, vif network.VIF) error {
	if err := r.withDHCP(instanceID, vif, func(s *dhcp.Server, h dhcp.Host) error { return s.RemoveHost(ctx, h.MAC) }); err != nil {
		return err
	}
	return r.withPortFirewall(ctx, instanceID, vif, func(fw *secgroup.Firewall, p secgroup.Port) error { return fw.RemovePort(ctx, p.ID) })
}

// withDHCP runs fn with the DHCP server of the lab network of vif and the
// port's host entry; a port of no lab, or of a network without dhcp, is
// left alone.
func (r *VIFRouter) withDHCP(instanceID string, vif network.VIF, fn func(*dhcp.Server, dhcp.Host) error) error {
	st, err := r.lab(instanceID)
	if err != nil || st == nil {
		return err
	}
	srv, ok := st.dhcpServerOf(vif)
	h, hasMAC := dhcp.HostFor(vif)
	if !ok || !hasMAC {
		return nil
	}
	return fn(srv, h)
}

// withPortFirewall runs fn with the firewall of the lab of instanceID and
// its port of vif, under the lab network's lock. An instance of no lab, or
// a VIF that is no lab port, is left alone.
func (r *VIFRouter) withPortFirewall(ctx context.Context, instanceID string, vif network.VIF, fn func(fw *secgroup.Firewall, p secgroup.Port) error) error {
	st, err := r.lab(instanceID)
	if err != nil || st == nil {
		return err
	}
	p, ok := st.port(vif.ID)
	if !ok {
		return nil
	}
	ln, err := r.net(st)
	if err != nil {
		return err
	}
	ln.mu.Lock()
	defer ln.mu.Unlock()
	fw, err := ln.firewall(ctx, st, false)
	if err != nil {
		return err
	}
	return fn(fw, p)
}

// Close closes the drivers the router opened.
func (r *VIFRouter) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	var errs []error
	for k, ln := range r.nets {
		errs = append(errs, ln.close())
		delete(r.nets, k)
	}
	return errors.Join(errs...)
}
