package lab

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/dockervisor/dockervisor/network/dhcp"
	"github.com/dockervisor/dockervisor/network/floatingip"
	"github.com/dockervisor/dockervisor/pidproc"
)

// ensureNetnsCreated is ensureNetns, reporting whether it made the namespace.
func ensureNetnsCreated(name string) (bool, error) {
	if _, err := os.Stat("/run/netns/" + name); err == nil {
		return false, nil
	}
	return true, ensureNetns(name)
}

// upOVS starts the lab's private Open vSwitch and its bridges, or stops a
// switch the file no longer needs.
func upOVS(ctx context.Context, f *File, st *State, stateDir string, record func(Action)) error {
	if !f.HasOVS() {
		if st.OVSDir == "" {
			return nil
		}
		if err := stopOVS(ctx, st.OVSDir); err != nil {
			return err
		}
		record(Action{Kind: "ovs", Name: "switch", ID: st.OVSDir, Action: "removed"})
		return st.Update(func(s *State) { s.OVSDir, s.OVSBridges = "", nil })
	}
	dir := ovsRunDir(stateDir, f.Name)
	var bridges []string
	for _, n := range f.networkNames() {
		if f.Networks[n].Type == NetworkOVS {
			bridges = append(bridges, f.OVSBridgeName(n))
		}
	}
	all := slices.Compact(slices.Sorted(slices.Values(append(slices.Clone(st.OVSBridges), bridges...))))
	if err := st.Update(func(s *State) { s.OVSDir, s.OVSBridges = dir, all }); err != nil {
		return err
	}
	running := ovsRunning(ctx, dir)
	sw, err := ensureOVS(ctx, dir, st.Netns, bridges)
	if err != nil {
		return err
	}
	if !running {
		record(Action{Kind: "ovs", Name: "switch", ID: dir, Action: "created"})
	}
	for _, br := range all {
		if !slices.Contains(bridges, br) {
			if _, err := sw.Vsctl(ctx, "--if-exists", "del-br", br); err != nil {
				return err
			}
		}
	}
	return st.Update(func(s *State) { s.OVSBridges = bridges })
}

// upNetwork builds the router and external namespace, syncs the firewall
// with the file's security groups and binds the floating IPs: the parts
// that need the instances' ports plugged.
func upNetwork(ctx context.Context, f *File, st *State, netr *VIFRouter, fwChanged bool, record func(Action)) error {
	want, err := f.bindings()
	if err != nil {
		return err
	}
	if f.External == nil && st.ExtNetns != "" {
		if err := unbindAll(ctx, st.ExtNetns); err != nil {
			return err
		}
		if err := deleteNetns(st.ExtNetns); err != nil {
			return err
		}
		record(Action{Kind: "netns", Name: st.ExtNetns, ID: "/run/netns/" + st.ExtNetns, Action: "removed"})
		if err := st.Update(func(s *State) { s.ExtNetns, s.FloatingIPs = "", nil }); err != nil {
			return err
		}
	}
	if f.External != nil {
		name := ExtNetnsName(f.Name)
		if err := st.Update(func(s *State) { s.ExtNetns = name }); err != nil {
			return err
		}
		_, statErr := os.Stat("/run/netns/" + name)
		if err := ensureRouter(f, st.Netns, name); err != nil {
			return err
		}
		if statErr != nil {
			record(Action{Kind: "netns", Name: name, ID: "/run/netns/" + name, Action: "created"})
		}
	}
	if st.Netns != "" {
		if err := netr.syncFirewall(ctx, st); err != nil {
			return err
		}
		if fwChanged {
			record(Action{Kind: "firewall", Name: st.Netns, ID: fmt.Sprintf("%d groups, %d ports", len(st.Groups), len(st.Ports)), Action: "applied"})
		}
	}
	if st.ExtNetns == "" {
		return nil
	}
	have, err := listBindings(ctx, st.ExtNetns)
	if err != nil {
		return err
	}
	// Recorded before they are made, kept until they are gone.
	if err := st.Update(func(s *State) { s.FloatingIPs = unionBindings(have, want) }); err != nil {
		return err
	}
	if err := syncBindings(ctx, st.ExtNetns, want); err != nil {
		return err
	}
	for _, w := range want {
		if !slices.Contains(have, w) {
			record(Action{Kind: "floating-ip", Name: w.Floating.String(), ID: w.Fixed.String(), Action: "bound"})
		}
	}
	for _, h := range have {
		if !slices.Contains(want, h) {
			record(Action{Kind: "floating-ip", Name: h.Floating.String(), ID: h.Fixed.String(), Action: "unbound"})
		}
	}
	return st.Update(func(s *State) { s.FloatingIPs = want })
}

func listBindings(ctx context.Context, extNS string) ([]floatingip.Binding, error) {
	b, err := floatingip.New(ExtInterface, floatingip.WithHostNetNS("/run/netns/"+extNS))
	if err != nil {
		return nil, err
	}
	return b.List(ctx)
}

func unionBindings(a, b []floatingip.Binding) []floatingip.Binding {
	out := slices.Clone(a)
	for _, x := range b {
		if !slices.Contains(out, x) {
			out = append(out, x)
		}
	}
	return out
}

// downNetwork removes the lab's floating IPs, firewall, switch and
// namespaces, each step whatever happened to the others.
func downNetwork(ctx context.Context, st *State, opts Options, record func(Action)) error {
	var errs []error
	if st.ExtNetns != "" {
		have, err := func() ([]floatingip.Binding, error) {
			if _, err := os.Stat("/run/netns/" + st.ExtNetns); err != nil {
				return nil, nil
			}
			return listBindings(ctx, st.ExtNetns)
		}()
		if err == nil {
			err = unbindAll(ctx, st.ExtNetns)
		}
		errs = append(errs, err)
		if err == nil {
			for _, h := range have {
				record(Action{Kind: "floating-ip", Name: h.Floating.String(), ID: h.Fixed.String(), Action: "unbound"})
			}
		}
	}
	if st.Netns != "" && (len(st.Groups) > 0 || len(st.Ports) > 0) {
		netr, closeNet := opts.net()
		err := netr.teardownFirewall(ctx, st)
		errs = append(errs, err, closeNet())
		if err == nil {
			record(Action{Kind: "firewall", Name: st.Netns, ID: "", Action: "removed"})
		}
	}
	if st.OVSDir != "" {
		_, statErr := os.Stat(st.OVSDir)
		err := stopOVS(ctx, st.OVSDir)
		errs = append(errs, err)
		if err == nil && statErr == nil {
			record(Action{Kind: "ovs", Name: "switch", ID: st.OVSDir, Action: "destroyed"})
		}
	}
	for _, ns := range []string{st.ExtNetns, st.Netns} {
		if ns == "" {
			continue
		}
		_, statErr := os.Stat("/run/netns/" + ns)
		err := deleteNetns(ns)
		errs = append(errs, err)
		if err == nil && statErr == nil {
			record(Action{Kind: "netns", Name: ns, ID: "/run/netns/" + ns, Action: "destroyed"})
		}
	}
	return errors.Join(errs...)
}

// NetStatus reports the network side of lab name from its state file and
// the kernel.
func NetStatus(ctx context.Context, stateDir, name string) (NetworkStatus, error) {
	st, _, err := LoadState(stateDir, name)
	if err != nil {
		return NetworkStatus{}, err
	}
	ns := NetworkStatus{Netns: st.Netns, ExtNetns: st.ExtNetns, OVSDir: st.OVSDir, FilteredPorts: len(st.Ports), FloatingIPs: []floatingip.Binding{}}
	for _, g := range st.Groups {
		ns.SecurityGroups = append(ns.SecurityGroups, g.ID)
	}
	exists := func(n string) bool {
		_, err := os.Stat("/run/netns/" + n)
		return n != "" && err == nil
	}
	ns.NetnsExists, ns.ExtNetnsExists = exists(st.Netns), exists(st.ExtNetns)
	if st.OVSDir != "" {
		ns.OVSRunning = ovsRunning(ctx, st.OVSDir)
	}
	if ns.ExtNetnsExists {
		b, err := listBindings(ctx, st.ExtNetns)
		if err != nil {
			return ns, err
		}
		ns.FloatingIPs = append(ns.FloatingIPs, b...)
	}
	for _, s := range st.Services {
		d := DHCPStatus{Network: s.Network, Netns: s.Netns}
		if srv, err := dhcp.Open(s.DHCPDir); err == nil {
			d.Running = srv.Running()
			hosts, _ := srv.Hosts()
			leases, _ := srv.Leases()
			d.Hosts, d.Leases = len(hosts), len(leases)
		}
		ns.DHCP = append(ns.DHCP, d)
	}
	if st.MetadataDir != "" {
		ns.MetadataDir = st.MetadataDir
		if p, err := pidproc.Open(filepath.Join(st.MetadataDir, metadataPID), st.MetadataDir); err == nil {
			ns.MetadataRunning = true
			p.Close()
		}
		keys, _ := filepath.Glob(filepath.Join(st.MetadataDir, "instances", "*.json"))
		ns.MetadataInstances = len(keys)
	}
	return ns, nil
}
