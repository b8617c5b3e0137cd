package docker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/moby/moby/api/types/mount"

	"github.com/dockervisor/dockervisor/hypervisor"
	"github.com/dockervisor/dockervisor/internal/undo"
	"github.com/dockervisor/dockervisor/network"
)

// vifRoom is the Driver's room of VIFs: plugging, attaching and
// unplugging an instance's virtual interfaces and its resolv.conf.
type vifRoom struct {
	*core
	life    instanceReader
	records recordWriter
	guest   guestRefresher
	osInst  osKind
}

// PortObserver is told when the host side of a VIF comes and goes, so that
// host-wide services that work on ports (security groups, floating IPs,
// accounting) follow the ports the Driver plugs. It is optional; see
// WithPortObserver. Package network/secgroup has one for its Firewall
// (secgroup.NewPortHook).
//
// Calls for one instance are serialised; calls for different instances
// may run concurrently.
type PortObserver interface {
	// PortPlugged is called after the host side of vif was plugged for the
	// instance instanceID (at Spawn, PlugVIFs and AttachInterface) and
	// before the instance's guest device is attached to it. An error fails
	// that operation, which then unplugs the VIF again.
	PortPlugged(ctx context.Context, instanceID string, vif network.VIF) error
	// PortUnplugging is called before the host side of vif is unplugged
	// (UnplugVIFs, DetachInterface, Destroy, and the rollback of a failed
	// plug). An error fails that operation; the VIF then stays plugged and
	// recorded, so that a retry calls PortUnplugging again. It must
	// succeed for a port it does not know.
	PortUnplugging(ctx context.Context, instanceID string, vif network.VIF) error
}

// WithVIFDriver makes the Driver plug VIFs with drv: the VIFs of
// InstanceSpec.VIFs at Spawn, PlugVIFs, UnplugVIFs, AttachInterface and
// DetachInterface, and an attachment of every VIF after every start.
// A network.Dispatcher serves several VIF types with one driver each.
// Without it, Capabilities().VIFs is false and a spec with VIFs is
// ErrNotSupported.
func WithVIFDriver(drv network.VIFDriver) Option {
	return func(o *options) error {
		if drv == nil {
			return fmt.Errorf("%w: nil VIF driver", hypervisor.ErrInvalidArgument)
		}
		o.vifs = drv
		return nil
	}
}

// WithPortObserver makes the Driver tell obs about every port it plugs
// and unplugs (see PortObserver), such as a security-group firewall, so
// that a port's rules come and go with the port. It needs WithVIFDriver.
func WithPortObserver(obs PortObserver) Option {
	return func(o *options) error {
		if obs == nil {
			return fmt.Errorf("%w: nil port observer", hypervisor.ErrInvalidArgument)
		}
		o.ports = obs
		return nil
	}
}

// vifRecord is one VIF of an instance in its durable record: the VIF and
// the guest device it is attached as.
type vifRecord struct {
	VIF    network.VIF `json:"vif"`
	Device string      `json:"device"` // eth0, eth1…
}

// deviceIndex returns N of "ethN", or -1.
func deviceIndex(dev string) int {
	n, err := strconv.Atoi(strings.TrimPrefix(dev, "eth"))
	if err != nil || !strings.HasPrefix(dev, "eth") || n < 0 {
		return -1
	}
	return n
}

// sortVIFs orders VIF records by guest device (eth0, eth1…).
func sortVIFs(recs []vifRecord) {
	slices.SortStableFunc(recs, func(a, b vifRecord) int { return deviceIndex(a.Device) - deviceIndex(b.Device) })
}

// nextDevice returns the first ethN that no record uses.
func nextDevice(recs []vifRecord) string {
	for n := 0; ; n++ {
		dev := "eth" + strconv.Itoa(n)
		if !slices.ContainsFunc(recs, func(r vifRecord) bool { return r.Device == dev }) {
			return dev
		}
	}
}

// recordedVIFs returns the VIFs of recs, in device order.
func recordedVIFs(recs []vifRecord) []network.VIF {
	if len(recs) == 0 {
		return nil
	}
	out := make([]network.VIF, len(recs))
	for i, r := range recs {
		out[i] = r.VIF
	}
	return hypervisor.CloneVIFs(out)
}

// newVIFRecords gives vifs the devices eth0, eth1… in order.
func newVIFRecords(vifs []network.VIF) []vifRecord {
	recs := make([]vifRecord, len(vifs))
	for i, v := range vifs {
		recs[i] = vifRecord{VIF: v, Device: "eth" + strconv.Itoa(i)}
	}
	return recs
}

// portsByDevice maps guest devices to port IDs, for interface counters.
func portsByDevice(recs []vifRecord) map[string]string {
	m := make(map[string]string, len(recs))
	for _, r := range recs {
		m[r.Device] = r.VIF.ID
	}
	return m
}

// target returns where r is attached in the namespace of process pid. The
// default route of each address family goes through the first VIF (in
// device order) with a gateway of that family, so an instance has one per
// family.
func vifTarget(recs []vifRecord, r vifRecord, pid int) network.Target {
	t := network.Target{NetNS: netnsPath(pid), IfName: r.Device}
	v4, v6 := "", ""
	for _, x := range recs {
		for _, sn := range x.VIF.Subnets {
			if !sn.Gateway.IsValid() {
				continue
			}
			if sn.Gateway.Is4() && v4 == "" {
				v4 = x.VIF.ID
			}
			if sn.Gateway.Is6() && v6 == "" {
				v6 = x.VIF.ID
			}
		}
	}
	t.DefaultRouteV4 = v4 == r.VIF.ID
	t.DefaultRouteV6 = v6 == r.VIF.ID
	return t
}

func netnsPath(pid int) string { return fmt.Sprintf("/proc/%d/ns/net", pid) }

// classifyVIF gives an error of a VIF driver or port observer its
// hypervisor class. The network package's errors carry their class
// already; a namespace that vanished (an ErrInvalidState) means the
// instance's process died, and gets the *StateError that says so. An
// error without a class (a third-party VIF driver's) that is
// errors.ErrUnsupported is ErrNotSupported; opErr gives any other
// ErrUnavailable.
func classifyVIF(id string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, network.ErrNamespaceGone):
		se := &hypervisor.StateError{Op: "attach-vifs", ID: id, Current: hypervisor.StateCrashed, Want: []hypervisor.State{hypervisor.StateRunning}}
		return fmt.Errorf("%w: the instance's process exited: %w", se, err)
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded), hasClass(err):
		return err
	case errors.Is(err, errors.ErrUnsupported):
		return fmt.Errorf("%w: %w", hypervisor.ErrNotSupported, err)
	}
	return err
}

// checkVIFsSupported refuses VIFs without a VIF driver.
func (d *vifRoom) checkVIFsSupported(vifs []network.VIF) error {
	if len(vifs) > 0 && d.opts.vifs == nil {
		return fmt.Errorf("%w: VIFs need a VIF driver (WithVIFDriver)", hypervisor.ErrNotSupported)
	}
	return nil
}

// checkDeviceNames refuses VIFs whose host device names
// (network.DeviceNames: tap, qbr, qvb, qvo and the port ID's first
// characters) are those of a VIF of another instance of this Driver, as
// its record in the state directory says: ErrInvalidArgument wrapping
// network.ErrDeviceConflict, before anything is created. The record is
// what counts, not the host: a stopped instance's taps are gone with its
// process, but its next start needs their names. (The VIF drivers refuse
// a name that a device of someone else holds on the host.)
func (d *vifRoom) checkDeviceNames(id string, vifs []network.VIF) error {
	if len(vifs) == 0 || d.opts.vifs == nil {
		return nil
	}
	taps := make(map[string]string, len(vifs))
	for _, v := range vifs {
		n, err := network.DeviceNames(v.ID)
		if err != nil {
			return fmt.Errorf("%w: %w", hypervisor.ErrInvalidArgument, err)
		}
		taps[n.Tap] = v.ID
	}
	keys, err := d.state.instances.Keys()
	if err != nil {
		return err
	}
	for _, other := range keys {
		if other == id {
			continue
		}
		rec, ok, err := d.state.instances.Load(other)
		if err != nil {
			// A record that cannot be read cannot be checked; it does not
			// block every other instance's VIFs.
			d.log.Warn("device name check: skipping an unreadable record", "op", "check-device-names", "id", id, "other", other, "err", err)
			continue
		}
		if !ok {
			continue
		}
		for _, r := range rec.VIFs {
			n, err := network.DeviceNames(r.VIF.ID)
			if err != nil {
				continue
			}
			if port, clash := taps[n.Tap]; clash {
				return fmt.Errorf("%w: %w: port %s would have the host devices of port %s of instance %s (%s…): port IDs that share their first %d characters share device names",
					hypervisor.ErrInvalidArgument, network.ErrDeviceConflict, port, r.VIF.ID, other, n.Tap, network.PortIDPrefixLen)
			}
		}
	}
	return nil
}

// plugVIF plugs the host side of vif and tells the port observer,
// registering the undo of each first.
func (d *vifRoom) plugVIF(ctx context.Context, id string, vif network.VIF, u *undo.Stack) error {
	u.Push(func(ctx context.Context) error { return d.opts.vifs.Unplug(ctx, id, vif) })
	if err := d.opts.vifs.Plug(ctx, id, vif); err != nil {
		return fmt.Errorf("plug VIF %s: %w", vif.ID, classifyVIF(id, err))
	}
	if d.opts.ports != nil {
		u.Push(func(ctx context.Context) error { return d.opts.ports.PortUnplugging(ctx, id, vif) })
		if err := d.opts.ports.PortPlugged(ctx, id, vif); err != nil {
			return fmt.Errorf("port observer, VIF %s: %w", vif.ID, classifyVIF(id, err))
		}
	}
	return nil
}

// unplugVIF tells the port observer and unplugs the host side of vif.
func (d *vifRoom) unplugVIF(ctx context.Context, id string, vif network.VIF) error {
	if d.opts.ports != nil {
		if err := d.opts.ports.PortUnplugging(ctx, id, vif); err != nil {
			return fmt.Errorf("port observer, VIF %s: %w", vif.ID, classifyVIF(id, err))
		}
	}
	if err := d.opts.vifs.Unplug(ctx, id, vif); err != nil {
		return fmt.Errorf("unplug VIF %s: %w", vif.ID, classifyVIF(id, err))
	}
	return nil
}

// guestVIFs returns recs as the Driver configures them inside the
// instance. An application instance gets every address, route and
// default route of its VIFs (it has no DHCP client). An OS instance
// configures the subnets that say so itself (network.Subnet.Dynamic: a
// DHCP server, an IPv6 address mode), as a VM does: its DHCP client takes
// the lease (or the kernel makes its SLAAC address) with the routes that
// come with it, so the Driver leaves those subnets out — an address the
// Driver set would not be the lease, and the OS's network manager would
// drop it as foreign anyway.
func guestVIFs(recs []vifRecord, os bool) []vifRecord {
	if !os {
		return recs
	}
	out := make([]vifRecord, len(recs))
	for i, r := range recs {
		out[i] = r
		out[i].VIF.Subnets = slices.DeleteFunc(slices.Clone(r.VIF.Subnets), network.Subnet.Dynamic)
	}
	return out
}

// attachVIF attaches r inside the namespace of process pid; recs are all
// the instance's VIFs (for the default routes), os says whether it is an
// OS instance (see guestVIFs).
func (d *vifRoom) attachVIF(ctx context.Context, id string, recs []vifRecord, r vifRecord, pid int, os bool) error {
	if pid <= 0 {
		return fmt.Errorf("attach VIF %s: %w", r.VIF.ID, classifyVIF(id, fmt.Errorf("%w: no process", network.ErrNamespaceGone)))
	}
	recs = guestVIFs(recs, os)
	r = guestVIFs([]vifRecord{r}, os)[0]
	if err := d.opts.vifs.Attach(ctx, id, r.VIF, vifTarget(recs, r, pid)); err != nil {
		return fmt.Errorf("attach VIF %s as %s: %w", r.VIF.ID, r.Device, classifyVIF(id, err))
	}
	return nil
}

// attachVIFs is the post-start step attach-vifs: it attaches every VIF of
// the instance's durable record inside its new network namespace, in
// device order, and brings its resolv.conf up to date. Every start runs
// it, so power-on, both reboots, restore and a start by a new Driver
// (after an agent restart) all bring the VIFs back.
func (d *vifRoom) attachVIFs(ctx context.Context, s startedInstance) error {
	if len(s.Record.VIFs) == 0 {
		return nil
	}
	if d.opts.vifs == nil {
		return fmt.Errorf("%w: the instance has VIFs, but the Driver has no VIF driver (WithVIFDriver)", hypervisor.ErrNotSupported)
	}
	if err := d.writeGuestNetwork(ctx, s.ID, s.Record.VIFs); err != nil {
		return err
	}
	for _, r := range s.Record.VIFs {
		if err := d.attachVIF(ctx, s.ID, s.Record.VIFs, r, s.PID, s.OS); err != nil {
			return err
		}
	}
	return nil
}

// netSysctls are the sysctls of an instance's network namespace with a
// VIF driver: the engine turns IPv6 off in the namespace of a container
// without an engine network, and VIFs may carry IPv6 addresses.
func (d *vifRoom) netSysctls() map[string]string {
	if d.opts.vifs == nil {
		return nil
	}
	return map[string]string{
		"net.ipv6.conf.all.disable_ipv6":     "0",
		"net.ipv6.conf.default.disable_ipv6": "0",
	}
}

// resolvConfPath is the instance's resolv.conf, which the Driver owns and
// bind-mounts into the instance when it has a VIF driver.
func (d *vifRoom) resolvConfPath(id string) string {
	return filepath.Join(filepath.Dir(d.state.instances.Dir()), "resolv", id+".conf")
}

// resolvConf renders the name servers of the VIFs' subnets, in device
// order, without duplicates.
func resolvConf(recs []vifRecord) []byte {
	var b strings.Builder
	b.WriteString("# Written by dockervisor from the DNS servers of the instance's subnets.\n")
	var seen []netip.Addr
	for _, r := range recs {
		for _, sn := range r.VIF.Subnets {
			for _, ns := range sn.DNS {
				if !slices.Contains(seen, ns) {
					seen = append(seen, ns)
					b.WriteString("nameserver " + ns.String() + "\n")
				}
			}
		}
	}
	return []byte(b.String())
}

// writeGuestNetwork rewrites what the guest reads of its network: its
// resolv.conf and its boot data's VIFs (network_data.json of its config
// drive and of the metadata service).
func (d *vifRoom) writeGuestNetwork(ctx context.Context, id string, recs []vifRecord) error {
	if err := d.writeResolvConf(id, recs); err != nil {
		return err
	}
	return d.guest.refreshGuest(ctx, id, recordedVIFs(recs))
}

// writeResolvConf rewrites the instance's resolv.conf in place: the file
// is bind-mounted into the instance, and the mount holds its inode, so it
// is truncated and written, never replaced.
func (d *vifRoom) writeResolvConf(id string, recs []vifRecord) error {
	if d.opts.vifs == nil {
		return nil
	}
	p := d.resolvConfPath(id)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return fmt.Errorf("resolv.conf: %w", err)
	}
	if err := os.WriteFile(p, resolvConf(recs), 0o644); err != nil {
		return fmt.Errorf("resolv.conf: %w", err)
	}
	return nil
}

// netFileMounts writes the network files of a new instance and returns
// their bind mounts, registering the files' removal first: its hosts file
// always, and with a VIF driver its resolv.conf. (The engine's network
// stack does nothing for an instance, see createContainer, so the engine
// provides neither; without a VIF driver the instance has no network and
// keeps its image's resolv.conf.)
func (d *vifRoom) netFileMounts(id string, vifs []network.VIF, u *undo.Stack) ([]mount.Mount, error) {
	u.Push(func(context.Context) error { return d.removeNetFiles(id) })
	if err := d.writeHosts(id, false); err != nil {
		return nil, err
	}
	if d.opts.vifs == nil {
		return []mount.Mount{d.hostsMount(id)}, nil
	}
	if err := d.writeResolvConf(id, newVIFRecords(vifs)); err != nil {
		return nil, err
	}
	return []mount.Mount{d.hostsMount(id), d.resolvConfMount(id)}, nil
}

// resolvConfMount is the bind mount of instance id's resolv.conf.
func (d *vifRoom) resolvConfMount(id string) mount.Mount {
	return mount.Mount{Type: mount.TypeBind, Source: d.resolvConfPath(id), Target: "/etc/resolv.conf"}
}

// hostsFile is an instance's /etc/hosts as the engine writes it for a
// container without an engine network: the loopback names.
const hostsFile = "127.0.0.1\tlocalhost\n" +
	"::1\tlocalhost ip6-localhost ip6-loopback\n" +
	"fe00::0\tip6-localnet\n" +
	"ff00::0\tip6-mcastprefix\n" +
	"ff02::1\tip6-allnodes\n" +
	"ff02::2\tip6-allrouters\n"

// hostsPath is the instance's /etc/hosts, which the Driver owns and
// bind-mounts into every instance (beside its resolv.conf).
func (d *vifRoom) hostsPath(id string) string {
	return filepath.Join(filepath.Dir(d.resolvConfPath(id)), id+".hosts")
}

// writeHosts writes the instance's hosts file; with keep, one that is
// there (the guest may have changed it) stays as it is.
func (d *vifRoom) writeHosts(id string, keep bool) error {
	p := d.hostsPath(id)
	if keep {
		if _, err := os.Stat(p); err == nil {
			return nil
		}
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return fmt.Errorf("hosts: %w", err)
	}
	if err := os.WriteFile(p, []byte(hostsFile), 0o644); err != nil {
		return fmt.Errorf("hosts: %w", err)
	}
	return nil
}

// hostsMount is the bind mount of instance id's hosts file.
func (d *vifRoom) hostsMount(id string) mount.Mount {
	return mount.Mount{Type: mount.TypeBind, Source: d.hostsPath(id), Target: "/etc/hosts"}
}

// removeNetFiles removes the instance's resolv.conf and hosts file.
func (d *vifRoom) removeNetFiles(id string) error {
	var errs []error
	for _, p := range []string{d.resolvConfPath(id), d.hostsPath(id)} {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("remove %s: %w", filepath.Base(p), err))
		}
	}
	return errors.Join(errs...)
}

// unplugRecorded unplugs every VIF of rec (the instance's container is
// gone) and returns the record with the VIFs it could not unplug.
func (d *vifRoom) unplugRecorded(ctx context.Context, id string, rec instanceRecord) (instanceRecord, error) {
	if len(rec.VIFs) == 0 || d.opts.vifs == nil {
		return rec, nil
	}
	var errs []error
	var left []vifRecord
	for _, r := range rec.VIFs {
		if err := d.unplugVIF(ctx, id, r.VIF); err != nil {
			errs = append(errs, err)
			left = append(left, r)
		}
	}
	rec.VIFs = left
	return rec, errors.Join(errs...)
}

// withInstance runs fn on instance id under its lock.
func (d *vifRoom) withInstance(ctx context.Context, op, id string, fn func(t *target) error) error {
	t, unlock, err := d.life.lockCurrent(ctx, id)
	if err != nil {
		return opErr(op, id, err)
	}
	defer unlock()
	return opErr(op, id, fn(t))
}

// validateVIFArgs checks VIFs given to a VIF method, before anything else.
func (d *vifRoom) validateVIFArgs(vifs ...network.VIF) error {
	if d.opts.vifs == nil {
		return fmt.Errorf("%w: no VIF driver (WithVIFDriver)", hypervisor.ErrNotSupported)
	}
	for _, v := range vifs {
		if err := v.Validate(); err != nil {
			return fmt.Errorf("%w: %w", hypervisor.ErrInvalidArgument, err)
		}
	}
	return nil
}

// PlugVIFs plugs the host side of vifs and, if the instance has a process
// (running or paused), attaches each inside it as the next free ethN. The
// VIFs are recorded durably first, so every later start attaches them
// again; a VIF plugged while the instance is stopped is attached at its
// next start. Plugging a plugged VIF again changes nothing; plugging one
// with a plugged VIF's ID but other details replaces it (on the same
// guest device). A malformed VIF, or one that clashes with the instance's
// other VIFs (same MAC, say), is ErrInvalidArgument and changes nothing;
// a failure later unplugs what this call plugged and restores the record.
func (d *vifRoom) PlugVIFs(ctx context.Context, id string, vifs []network.VIF) error {
	if err := d.validateVIFArgs(vifs...); err != nil {
		return opErr("plug-vifs", id, err)
	}
	return d.withInstance(ctx, "plug-vifs", id, func(t *target) error {
		return d.plugVIFs(ctx, t, vifs)
	})
}

// AttachInterface hot-plugs vif into the running instance as its next free
// ethN (see PlugVIFs). The instance must be running.
func (d *vifRoom) AttachInterface(ctx context.Context, id string, vif network.VIF) error {
	const op = "attach-interface"
	if err := d.validateVIFArgs(vif); err != nil {
		return opErr(op, id, err)
	}
	return d.withInstance(ctx, op, id, func(t *target) error {
		if err := hypervisor.CheckState(op, id, t.cur, hypervisor.StateRunning); err != nil {
			return err
		}
		return d.plugVIFs(ctx, t, []network.VIF{vif})
	})
}

// UnplugVIFs detaches vifs from the instance (if it has a process) and
// unplugs their host side, in any state. VIFs the instance does not have
// are ignored. A VIF whose unplug fails stays recorded, so that a retry or
// Destroy unplugs it.
func (d *vifRoom) UnplugVIFs(ctx context.Context, id string, vifs []network.VIF) error {
	if d.opts.vifs == nil {
		return opErr("unplug-vifs", id, fmt.Errorf("%w: no VIF driver (WithVIFDriver)", hypervisor.ErrNotSupported))
	}
	return d.withInstance(ctx, "unplug-vifs", id, func(t *target) error {
		return d.unplugVIFs(ctx, t, vifs)
	})
}

// DetachInterface hot-unplugs vif from the instance, in any state (see
// UnplugVIFs). A VIF the instance does not have is not an error.
func (d *vifRoom) DetachInterface(ctx context.Context, id string, vif network.VIF) error {
	if d.opts.vifs == nil {
		return opErr("detach-interface", id, fmt.Errorf("%w: no VIF driver (WithVIFDriver)", hypervisor.ErrNotSupported))
	}
	return d.withInstance(ctx, "detach-interface", id, func(t *target) error {
		return d.unplugVIFs(ctx, t, []network.VIF{vif})
	})
}

// pidOf returns the process of a running or paused instance, else 0.
func pidOf(t *target) int {
	if (t.cur == hypervisor.StateRunning || t.cur == hypervisor.StatePaused) && t.c.State != nil {
		return t.c.State.Pid
	}
	return 0
}

func (d *vifRoom) plugVIFs(ctx context.Context, t *target, vifs []network.VIF) (err error) {
	recs := slices.Clone(t.rec.VIFs)
	var added, replaced []vifRecord // replaced: the old records of changed VIFs
	for _, v := range vifs {
		i := slices.IndexFunc(recs, func(r vifRecord) bool { return r.VIF.ID == v.ID })
		switch {
		case i < 0:
			r := vifRecord{VIF: v, Device: nextDevice(recs)}
			recs = append(recs, r)
			added = append(added, r)
		case vifEqual(recs[i].VIF, v):
			// Plugged already.
		default:
			replaced = append(replaced, recs[i])
			recs[i].VIF = v
			added = append(added, recs[i])
		}
	}
	if len(added) == 0 {
		return nil
	}
	sortVIFs(recs)
	if err := network.ValidateVIFs(recordedVIFs(recs)); err != nil {
		return fmt.Errorf("%w: %w", hypervisor.ErrInvalidArgument, err)
	}
	if err := d.checkDeviceNames(t.id, recordedVIFs(added)); err != nil {
		return err
	}
	pid := pidOf(t)

	u := undo.Stack{StepTimeout: d.cleanupTimeout, Log: d.log, Op: "plug-vifs", ID: t.id}
	defer func() {
		if err != nil {
			if rerr := u.Rollback(ctx); rerr != nil {
				// The journal stays, for the next call to finish the undo
				// (recover.go).
				err = &undo.Error{Err: err, Rollback: rerr}
				return
			}
		}
		err = errors.Join(err, d.records.endOp(t))
	}()
	prev := t.rec
	want := t.rec
	want.VIFs = recs
	// The record names the new VIFs, with the journal, before anything is
	// plugged: whatever is plugged is found again, and a new Driver undoes
	// a plug whose process died.
	d.records.beginOp(t, pendPlugVIFs)
	u.Push(func(context.Context) error {
		return errors.Join(d.records.save(t, prev), d.writeGuestNetwork(ctx, t.id, prev.VIFs))
	})
	if err := d.records.save(t, want); err != nil {
		return err
	}

	// A changed VIF goes first: detached and unplugged as it was (and
	// plugged and attached again by the undo).
	for _, old := range replaced {
		u.Push(func(ctx context.Context) error {
			var none undo.Stack // the record names the VIF: nothing to undo
			if err := d.plugVIF(ctx, t.id, old.VIF, &none); err != nil {
				return err
			}
			if pid > 0 {
				return d.attachVIF(ctx, t.id, prev.VIFs, old, pid, d.osInst.isOS(t.c))
			}
			return nil
		})
		if pid > 0 {
			if err := d.opts.vifs.Detach(ctx, t.id, old.VIF, vifTarget(t.rec.VIFs, old, pid)); err != nil {
				return fmt.Errorf("detach VIF %s: %w", old.VIF.ID, classifyVIF(t.id, err))
			}
		}
		if err := d.unplugVIF(ctx, t.id, old.VIF); err != nil {
			return err
		}
	}
	for _, r := range added {
		if err := d.plugVIF(ctx, t.id, r.VIF, &u); err != nil {
			return err
		}
	}
	if err := d.writeGuestNetwork(ctx, t.id, recs); err != nil {
		return err
	}
	if pid > 0 {
		for _, r := range added {
			u.Push(func(ctx context.Context) error {
				return d.opts.vifs.Detach(ctx, t.id, r.VIF, vifTarget(recs, r, pid))
			})
			if err := d.attachVIF(ctx, t.id, recs, r, pid, d.osInst.isOS(t.c)); err != nil {
				return err
			}
		}
	}
	u.Release()
	d.log.DebugContext(ctx, "plugged VIFs", "id", t.id, "n", len(added), "attached", pid > 0)
	return nil
}

func (d *vifRoom) unplugVIFs(ctx context.Context, t *target, vifs []network.VIF) (err error) {
	pid := pidOf(t)
	recs := slices.Clone(t.rec.VIFs)
	var ports []string
	for _, v := range vifs {
		if slices.ContainsFunc(recs, func(r vifRecord) bool { return r.VIF.ID == v.ID }) {
			ports = append(ports, v.ID)
		}
	}
	if len(ports) == 0 {
		return nil
	}
	// The journal names the VIFs before the first goes, so that a new
	// Driver finishes an unplug whose process died (recover.go). A VIF
	// whose unplug fails here stays recorded, and the journal goes.
	p := d.records.beginOp(t, pendUnplugVIFs)
	p.VIFs = ports
	if err := d.records.save(t, t.rec); err != nil {
		t.pending = nil
		return err
	}
	defer func() { err = errors.Join(err, d.records.endOp(t)) }()
	var errs []error
	changed := false
	for _, v := range vifs {
		i := slices.IndexFunc(recs, func(r vifRecord) bool { return r.VIF.ID == v.ID })
		if i < 0 {
			continue
		}
		r := recs[i]
		if pid > 0 {
			if err := d.opts.vifs.Detach(ctx, t.id, r.VIF, vifTarget(recs, r, pid)); err != nil {
				errs = append(errs, fmt.Errorf("detach VIF %s: %w", r.VIF.ID, classifyVIF(t.id, err)))
				continue
			}
		}
		if err := d.unplugVIF(ctx, t.id, r.VIF); err != nil {
			errs = append(errs, err)
			continue
		}
		recs = slices.Delete(recs, i, i+1)
		changed = true
	}
	if changed {
		want := t.rec
		want.VIFs = recs
		if len(recs) == 0 {
			want.VIFs = nil
		}
		t.pending = nil // this write ends the journal
		if err := d.records.save(t, want); err != nil {
			return errors.Join(append(errs, err)...)
		}
		errs = append(errs, d.writeGuestNetwork(ctx, t.id, recs))
	}
	return errors.Join(errs...)
}

// vifEqual reports whether two VIFs are the same in every detail.
func vifEqual(a, b network.VIF) bool {
	ja, erra := jsonOf(a)
	jb, errb := jsonOf(b)
	return erra == nil && errb == nil && ja == jb
}

func jsonOf(v network.VIF) (string, error) {
	b, err := json.Marshal(v)
	return string(b), err
}
