package secgroup

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"reflect"
	"slices"
	"sync"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/dockervisor/dockervisor/network/internal/linkutil"
	"github.com/dockervisor/dockervisor/network/internal/nftutil"
)

// TableName is the name of the Firewall's nf_tables tables (one each in
// the ip, ip6 and bridge families).
const TableName = "dockervisor-sg"

// Option configures a Firewall.
type Option func(*options) error

type options struct {
	hostNetNS    string
	logger       *slog.Logger
	cleanupDelay time.Duration
}

// WithHostNetNS puts the firewall in the network namespace at path (such
// as "/run/netns/host1"), where the VIF drivers plug the ports, instead of
// the process's own.
func WithHostNetNS(path string) Option {
	return func(o *options) error {
		if path == "" {
			return fmt.Errorf("secgroup: empty host namespace path")
		}
		o.hostNetNS = path
		return nil
	}
}

// WithLogger sets the logger (default: discard). The Firewall logs at Debug
// only.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) error {
		if l == nil {
			return fmt.Errorf("secgroup: nil logger")
		}
		o.logger = l
		return nil
	}
}

// WithCleanupDelay sets when, after an update that leaves port chains
// unreachable, the Firewall deletes them in the background (default: at
// once, 0). A negative d disables the background deletion: the chains go
// with [Firewall.Settle], or with the next change that removes something
// anyway. See the package documentation, "Atomicity".
func WithCleanupDelay(d time.Duration) Option {
	return func(o *options) error {
		o.cleanupDelay = d
		return nil
	}
}

// Firewall enforces security groups on the ports of one host network
// namespace. See the package documentation.
type Firewall struct {
	opts options

	mu     sync.Mutex // the host-wide lock: every change of the tables
	cur    state
	synced bool // the kernel holds exactly cur, plus the stale chains
	// gens is the version of each port's i- and o- chains; stale the
	// unreachable port chains (and their dispatch rules) still in the
	// kernel; timer the pending background cleanup.
	gens   map[string]uint64
	stale  []string
	timer  *time.Timer
	closed bool // no background cleanup after Close
}

type state struct {
	groups map[string]Group
	ports  map[string]Port
}

func (s state) clone() state {
	return state{groups: maps.Clone(s.groups), ports: maps.Clone(s.ports)}
}

// New returns a Firewall. It does no I/O: the first change (or Sync) owns
// the tables and rebuilds them from the Firewall's state.
func New(opts ...Option) (*Firewall, error) {
	o := options{hostNetNS: linkutil.CurrentNetNS, logger: slog.New(slog.DiscardHandler)}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	return &Firewall{opts: o, cur: state{groups: map[string]Group{}, ports: map[string]Port{}}, gens: map[string]uint64{}}, nil
}

func normGroup(g Group) Group {
	g.Rules = slices.Clone(g.Rules)
	if len(g.Rules) == 0 {
		g.Rules = nil
	}
	for i, r := range g.Rules {
		if r.PortRangeMin != nil {
			r.PortRangeMin = new(*r.PortRangeMin)
		}
		if r.PortRangeMax != nil {
			r.PortRangeMax = new(*r.PortRangeMax)
		}
		g.Rules[i] = r
	}
	return g
}

func normPort(p Port) Port {
	p.MAC = slices.Clone(p.MAC)
	p.IPs = slices.Clone(p.IPs)
	p.Groups = slices.Clone(p.Groups)
	if len(p.IPs) == 0 {
		p.IPs = nil
	}
	if len(p.Groups) == 0 {
		p.Groups = nil
	}
	return p
}

// validate checks the whole state: every group and port, remote groups and
// port groups that exist, devices used once.
func (s state) validate() error {
	for _, g := range s.groups {
		if err := g.Validate(); err != nil {
			return err
		}
		for i, r := range g.Rules {
			if r.RemoteGroupID != "" {
				if _, ok := s.groups[r.RemoteGroupID]; !ok {
					return fmt.Errorf("%w: group %s rule %d: remote group %s", ErrUnknownGroup, g.ID, i, r.RemoteGroupID)
				}
			}
		}
	}
	devs := map[string]string{}
	for _, p := range s.ports {
		if err := p.Validate(); err != nil {
			return err
		}
		if other, ok := devs[p.Device]; ok {
			return fmt.Errorf("%w: ports %s and %s share the device %s", ErrInvalidPort, other, p.ID, p.Device)
		}
		devs[p.Device] = p.ID
		for _, g := range p.Groups {
			if _, ok := s.groups[g]; !ok {
				return fmt.Errorf("%w: port %s: group %s", ErrUnknownGroup, p.ID, g)
			}
		}
	}
	return nil
}

// SetGroup creates the group g or replaces its rules. The ports in it get
// the new rules at once, in one kernel transaction: established
// connections that the new rules still allow keep flowing. Setting the same
// group again changes nothing. A malformed rule is [ErrInvalidRule], a
// remote group that does not exist [ErrUnknownGroup]; then nothing changes.
func (f *Firewall) SetGroup(ctx context.Context, g Group) error {
	return f.change(ctx, "set group", func(s *state) error {
		if err := g.Validate(); err != nil {
			return err
		}
		s.groups[g.ID] = normGroup(g)
		return nil
	})
}

// DeleteGroup deletes the group id. A group that does not exist is success;
// a group a port is in, or that another group's rule names as its remote
// group, is [ErrGroupInUse].
func (f *Firewall) DeleteGroup(ctx context.Context, id string) error {
	return f.change(ctx, "delete group", func(s *state) error {
		if _, ok := s.groups[id]; !ok {
			return nil
		}
		for _, p := range s.ports {
			if slices.Contains(p.Groups, id) {
				return fmt.Errorf("%w: group %s: port %s is in it", ErrGroupInUse, id, p.ID)
			}
		}
		for _, g := range s.groups {
			for _, r := range g.Rules {
				if r.RemoteGroupID == id && g.ID != id {
					return fmt.Errorf("%w: group %s: a rule of group %s names it", ErrGroupInUse, id, g.ID)
				}
			}
		}
		delete(s.groups, id)
		return nil
	})
}

// ApplyPort filters the port p (at plug), or updates its filter to p
// (new groups, fixed IPs or MAC): its own chains, its anti-spoofing and the
// address sets of its groups change in one kernel transaction. Applying the
// same port again changes nothing. A malformed port is [ErrInvalidPort], a
// group that does not exist [ErrUnknownGroup], a bridge that does not exist
// [ErrPortNotPlugged]; then nothing changes.
func (f *Firewall) ApplyPort(ctx context.Context, p Port) error {
	return f.change(ctx, "apply port", func(s *state) error {
		if err := p.Validate(); err != nil {
			return err
		}
		s.ports[p.ID] = normPort(p)
		return nil
	}, p)
}

// RemovePort removes everything of the port id (at unplug or destroy): its
// chains, its anti-spoofing and its addresses in its groups' sets; the
// tables go with the last port. A port the Firewall does not know is
// success.
func (f *Firewall) RemovePort(ctx context.Context, id string) error {
	return f.change(ctx, "remove port", func(s *state) error {
		delete(s.ports, id)
		return nil
	})
}

// Sync replaces the Firewall's whole state with groups and ports and
// rebuilds the tables from it in one kernel transaction, removing whatever
// else is in them (ports that no longer exist, leftovers of an earlier
// process). An agent calls it after a restart, before other changes.
// Connection tracking is kept, so established connections that the rules
// allow keep flowing. Bad input changes nothing.
func (f *Firewall) Sync(ctx context.Context, groups []Group, ports []Port) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	next := state{groups: map[string]Group{}, ports: map[string]Port{}}
	for _, g := range groups {
		if _, ok := next.groups[g.ID]; ok {
			return fmt.Errorf("%w: group %s listed twice", ErrInvalidRule, g.ID)
		}
		next.groups[g.ID] = normGroup(g)
	}
	for _, p := range ports {
		if _, ok := next.ports[p.ID]; ok {
			return fmt.Errorf("%w: port %s listed twice", ErrInvalidPort, p.ID)
		}
		next.ports[p.ID] = normPort(p)
	}
	f.synced = false
	return f.commit(ctx, "sync", next, ports...)
}

// Teardown removes every table of the Firewall and forgets its state. It
// is idempotent.
func (f *Firewall) Teardown(ctx context.Context) error {
	return f.Sync(ctx, nil, nil)
}

// Settle deletes now, in one kernel transaction, the port chains that
// earlier updates left unreachable, and their dispatch rules, which the
// Firewall otherwise deletes in the background just after the update
// (see [WithCleanupDelay]). Then the tables hold what a fresh build of the
// Firewall's state holds, up to the chains' version numbers. With nothing
// to delete it sends nothing.
func (f *Firewall) Settle(ctx context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return err
	}
	return f.collect()
}

// Close deletes the unreachable chains a background cleanup would have
// deleted, and stops background work: the tables stay as they are, and
// later changes still work but leave their cleanup to [Firewall.Settle]
// or the next change that removes something. It is idempotent.
func (f *Firewall) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	return f.collect()
}

// collect deletes the stale chains; f.mu is held.
func (f *Firewall) collect() error {
	if f.timer != nil {
		f.timer.Stop()
		f.timer = nil
	}
	if len(f.stale) == 0 || !f.synced {
		return nil
	}
	ns, err := linkutil.Open(f.opts.hostNetNS)
	if err != nil {
		return err
	}
	defer ns.Close()
	c, err := nftutil.New(ns.Fd())
	if err != nil {
		return err
	}
	b := &builder{c: c, next: f.cur, cur: f.cur, gens: f.gens, stale: f.stale}
	b.tables()
	b.collect()
	if err := c.Flush(); err != nil {
		return fmt.Errorf("secgroup: delete unreachable chains: nftables transaction: %w", err)
	}
	f.opts.logger.Debug("secgroup: deleted unreachable chains", "chains", len(f.stale))
	f.stale = nil
	return nil
}

// scheduleCollect arms the background cleanup of the stale chains; f.mu
// is held.
func (f *Firewall) scheduleCollect() {
	if len(f.stale) == 0 || f.timer != nil || f.opts.cleanupDelay < 0 || f.closed {
		return
	}
	f.timer = time.AfterFunc(f.opts.cleanupDelay, func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.timer = nil
		if err := f.collect(); err != nil {
			// Kept in f.stale: the next change retries.
			f.opts.logger.Warn("secgroup: stale chains left until the next change", "op", "background-cleanup", "err", err)
		}
	})
}

// Groups returns the groups, sorted by ID.
func (f *Firewall) Groups() []Group {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := []Group{}
	for _, id := range slices.Sorted(maps.Keys(f.cur.groups)) {
		out = append(out, normGroup(f.cur.groups[id]))
	}
	return out
}

// Ports returns the filtered ports, sorted by ID.
func (f *Firewall) Ports() []Port {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := []Port{}
	for _, id := range slices.Sorted(maps.Keys(f.cur.ports)) {
		out = append(out, normPort(f.cur.ports[id]))
	}
	return out
}

func (f *Firewall) change(ctx context.Context, op string, mutate func(*state) error, plugged ...Port) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	next := f.cur.clone()
	if err := mutate(&next); err != nil {
		return err
	}
	return f.commit(ctx, op, next, plugged...)
}

// commit validates next, checks that the ports in plugged are plugged and
// brings the kernel from f.cur to next in one transaction.
func (f *Firewall) commit(ctx context.Context, op string, next state, plugged ...Port) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := next.validate(); err != nil {
		return err
	}
	if f.synced && reflect.DeepEqual(f.cur, next) {
		return nil
	}
	ns, err := linkutil.Open(f.opts.hostNetNS)
	if err != nil {
		return err
	}
	defer ns.Close()
	for _, p := range plugged {
		if err := checkPlugged(ns, p); err != nil {
			return err
		}
	}
	// Every change that leaves ports to filter checks (and, where needed,
	// turns on) bridge netfilter: someone may have turned it off since.
	if len(next.ports) > 0 {
		if err := bridgeNetfilter(ctx, ns); err != nil {
			return fmt.Errorf("secgroup: %s: %w", op, err)
		}
	}
	c, err := nftutil.New(ns.Fd())
	if err != nil {
		return err
	}
	b := &builder{c: c, next: next, cur: f.cur, gens: maps.Clone(f.gens), stale: slices.Clone(f.stale)}
	b.tables()
	switch {
	case len(next.ports) == 0:
		b.deleteAll()
	case !f.synced || len(f.cur.ports) == 0:
		b.full()
	default:
		b.incremental()
	}
	if b.err != nil {
		return fmt.Errorf("secgroup: %s: %w", op, b.err)
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("secgroup: %s: nftables transaction: %w", op, err)
	}
	f.opts.logger.Debug("secgroup: committed", "op", op, "ports", len(next.ports), "groups", len(next.groups), "rules", b.rules)
	f.cur, f.synced, f.gens, f.stale = next, true, b.gens, b.stale
	f.scheduleCollect()
	return nil
}

func checkPlugged(ns *linkutil.NS, p Port) error {
	l, err := ns.Link(p.Bridge)
	if err != nil {
		return fmt.Errorf("secgroup: port %s: look up bridge %s: %w", p.ID, p.Bridge, err)
	}
	if l == nil {
		return fmt.Errorf("%w: port %s: bridge %s does not exist in %s", ErrPortNotPlugged, p.ID, p.Bridge, ns.Path())
	}
	if _, ok := l.(*netlink.Bridge); !ok {
		return fmt.Errorf("%w: port %s: %s is a %s, not a bridge", ErrPortNotPlugged, p.ID, p.Bridge, l.Type())
	}
	return nil
}

// members returns the fixed IPs of the ports in group g, by family, sorted.
func (s state) members(g string) (v4, v6 []netip.Addr) {
	for _, p := range s.ports {
		if !slices.Contains(p.Groups, g) {
			continue
		}
		for _, ip := range p.IPs {
			if ip.Is4() {
				v4 = append(v4, ip)
			} else {
				v6 = append(v6, ip)
			}
		}
	}
	slices.SortFunc(v4, netip.Addr.Compare)
	slices.SortFunc(v6, netip.Addr.Compare)
	return slices.Compact(v4), slices.Compact(v6)
}
