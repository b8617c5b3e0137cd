package ovs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/dockervisor/dockervisor/network"
)

// OwnerKey and OwnerValue mark the Open vSwitch interfaces this package
// creates (external-ids:created-by=dockervisor). A port is the driver's own
// for a VIF of an instance when its interface carries the mark and the
// VIF's external-ids vm-uuid (the instance ID) and iface-id (the port);
// the driver changes or deletes only such a port, so ports plugged by
// others (the Neutron agent, os-vif, an operator, another instance whose
// port ID starts the same) under the same name are left alone.
const (
	OwnerKey   = "created-by"
	OwnerValue = "dockervisor"
)

// portSpec is one port on the integration bridge, with the external-ids a
// Neutron Open vSwitch agent reads to bind it.
type portSpec struct {
	Bridge  string // integration bridge
	Name    string // port and interface name: qvoX (hybrid) or tapX (direct)
	IfaceID string // external-ids:iface-id, the Neutron port ID
	MAC     string // external-ids:attached-mac; empty leaves it out
	VMUUID  string // external-ids:vm-uuid, the instance ID
}

// addArgs is the single ovs-vsctl transaction that adds the port (or keeps
// it, if it exists) and sets its external-ids.
func (p portSpec) addArgs() []string {
	args := []string{
		"--", "--may-exist", "add-port", p.Bridge, p.Name,
		"--", "set", "Interface", p.Name,
		"external-ids:iface-id=" + quote(p.IfaceID),
		"external-ids:iface-status=active",
	}
	if p.MAC != "" {
		args = append(args, "external-ids:attached-mac="+quote(p.MAC))
	}
	args = append(args,
		"external-ids:vm-uuid="+quote(p.VMUUID),
		"external-ids:"+OwnerKey+"="+OwnerValue,
	)
	return args
}

// quote writes s as an OVSDB string atom (JSON string syntax), so that
// colons, spaces and quotes in IDs reach the database unchanged.
func quote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// iface is what the driver reads back about an interface.
type iface struct {
	Exists     bool
	OFPort     int // -1 when the device could not be opened; 0 when not yet assigned
	Error      string
	ExternalID map[string]string
}

// owned reports whether the interface is the driver's own port p: it
// carries the owner mark, p's instance and p's port.
func (i iface) owned(p portSpec) bool {
	return i.ExternalID[OwnerKey] == OwnerValue && i.ExternalID["vm-uuid"] == p.VMUUID && i.ExternalID["iface-id"] == p.IfaceID
}

// foreign is the error for an interface of p's name that is not p's.
func (i iface) foreign(p portSpec) error {
	return fmt.Errorf("%w: Open vSwitch interface %s exists and is not the port of %s of instance %s (created-by %q, vm-uuid %q, iface-id %q)",
		network.ErrDeviceConflict, p.Name, p.IfaceID, p.VMUUID, i.ExternalID[OwnerKey], i.ExternalID["vm-uuid"], i.ExternalID["iface-id"])
}

// checkPort returns an error wrapping [network.ErrDeviceConflict] if an
// interface called p.Name exists and is not p's.
func checkPort(ctx context.Context, l lookuper, p portSpec) error {
	i, err := l.lookup(ctx, p.Name)
	if err != nil {
		return err
	}
	if i.Exists && !i.owned(p) {
		return i.foreign(p)
	}
	return nil
}

// getIface reads an interface by name; a missing one is Exists false.
func getIface(ctx context.Context, r Runner, name string) (iface, error) {
	out, err := r.Run(ctx, "--format=json", "--columns=ofport,error,external_ids", "find", "Interface", "name="+quote(name))
	if err != nil {
		return iface{}, err
	}
	return parseIface(out)
}

// parseIface decodes the JSON table of a find with the columns ofport,
// error and external_ids.
func parseIface(out []byte) (iface, error) {
	var tbl struct {
		Data [][]json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(out, &tbl); err != nil {
		return iface{}, fmt.Errorf("%w: decode interface: %w", ErrCommand, err)
	}
	if len(tbl.Data) == 0 {
		return iface{}, nil
	}
	row := tbl.Data[0]
	if len(row) != 3 {
		return iface{}, fmt.Errorf("%w: decode interface: %d columns, want 3", ErrCommand, len(row))
	}
	return decodeIface(row[0], row[1], row[2]), nil
}

// addPort adds p in one transaction and checks that Open vSwitch opened
// its device. fresh says that the caller has just created the device: a
// port of that name left from an earlier device is stale (Open vSwitch
// keeps the old device open when the name reappears) and is deleted first,
// as is an existing port of ours that failed. It reports whether the port
// is new, so that a rollback deletes only a port this call added. A port
// that exists but is not p's is left alone and is
// [network.ErrDeviceConflict].
//
// The common path is a read of the interface through l (an OVSDB select,
// see [ovsdbLookup]) and one ovs-vsctl run, the add transaction, after
// which ovs-vsctl itself reports a new interface that ovs-vswitchd could
// not open (see [Vsctl]).
func addPort(ctx context.Context, l lookuper, r Runner, p portSpec, fresh bool) (added bool, err error) {
	before, err := l.lookup(ctx, p.Name)
	if err != nil {
		return false, err
	}
	if before.Exists && !before.owned(p) {
		return false, before.foreign(p)
	}
	if before.Exists && (fresh || before.check(p.Name) != nil) {
		if err := delPort(ctx, r, p.Name); err != nil {
			return false, err
		}
		before = iface{}
	}
	added = !before.Exists
	if _, err := r.Run(ctx, p.addArgs()...); err != nil {
		if added && errors.Is(err, ErrPortFailed) {
			err = errors.Join(err, delPort(ctx, r, p.Name))
		}
		return false, err
	}
	return added, nil
}

// check reports an interface that Open vSwitch could not open.
func (i iface) check(name string) error {
	switch {
	case !i.Exists:
		return fmt.Errorf("%w: interface %s vanished after add-port", ErrPortFailed, name)
	case i.OFPort < 0 || i.Error != "":
		return fmt.Errorf("%w: interface %s: ofport %d: %s", ErrPortFailed, name, i.OFPort, i.Error)
	}
	return nil
}

// delPort deletes the port name from whatever bridge holds it; a missing
// port is success.
func delPort(ctx context.Context, r Runner, name string) error {
	_, err := r.Run(ctx, "--if-exists", "del-port", name)
	return err
}

// delOwnedPort deletes the port p.Name if its interface is p's; a missing
// port, or one that is not p's, is left alone.
func delOwnedPort(ctx context.Context, l lookuper, r Runner, p portSpec) error {
	i, err := l.lookup(ctx, p.Name)
	if err != nil {
		return err
	}
	if !i.Exists || !i.owned(p) {
		return nil
	}
	return delPort(ctx, r, p.Name)
}
