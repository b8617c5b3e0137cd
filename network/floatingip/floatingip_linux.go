package floatingip

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sync"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/dockervisor/dockervisor/internal/undo"
	"github.com/dockervisor/dockervisor/network"
	"github.com/dockervisor/dockervisor/network/internal/linkutil"
	"github.com/dockervisor/dockervisor/network/internal/nftutil"
)

// TableName is the name of the nf_tables table (family ip) of the Binder.
const TableName = "dockervisor-fip"

const (
	mapDNAT = "dnat" // floating -> fixed
	mapSNAT = "snat" // fixed -> floating
)

// Option configures a Binder.
type Option func(*options) error

type options struct {
	hostNetNS  string
	logger     *slog.Logger
	commitHook func() error
}

// WithCommitHook is a test hook: f runs in Bind after the address was
// added and before the NAT transaction is sent; an error from f fails the
// Bind, which then rolls back.
func WithCommitHook(f func() error) Option {
	return func(o *options) error {
		o.commitHook = f
		return nil
	}
}

// WithHostNetNS puts the floating addresses and NAT rules in the network
// namespace at path instead of the process's own.
func WithHostNetNS(path string) Option {
	return func(o *options) error {
		if path == "" {
			return errors.New("floatingip: empty host namespace path")
		}
		o.hostNetNS = path
		return nil
	}
}

// WithLogger sets the logger (default: discard). The Binder logs at Debug
// only.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) error {
		if l == nil {
			return errors.New("floatingip: nil logger")
		}
		o.logger = l
		return nil
	}
}

// Binder binds floating IPs on one public interface.
type Binder struct {
	public string
	opts   options
	mu     sync.Mutex // host-wide
}

// New returns a Binder for the public interface public (such as "eth0" or
// "br-ex"). It does no I/O.
func New(public string, opts ...Option) (*Binder, error) {
	if err := network.ValidateDeviceName(public); err != nil {
		return nil, fmt.Errorf("floatingip: public interface: %w", err)
	}
	o := options{hostNetNS: linkutil.CurrentNetNS, logger: slog.New(slog.DiscardHandler)}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	return &Binder{public: public, opts: o}, nil
}

func checkAddr(what string, a netip.Addr) error {
	if !a.IsValid() || !a.Is4() || a.IsUnspecified() || a.IsMulticast() || a.IsLoopback() || a == netip.AddrFrom4([4]byte{255, 255, 255, 255}) {
		return fmt.Errorf("%w: %s IP %s (want a unicast IPv4 address)", ErrInvalidAddress, what, a)
	}
	return nil
}

type session struct {
	ns    *linkutil.NS
	c     *nftables.Conn
	table *nftables.Table
}

func (b *Binder) open() (*session, error) {
	ns, err := linkutil.Open(b.opts.hostNetNS)
	if err != nil {
		return nil, err
	}
	c, err := nftutil.New(ns.Fd())
	if err != nil {
		ns.Close()
		return nil, err
	}
	return &session{ns: ns, c: c, table: &nftables.Table{Family: nftables.TableFamilyIPv4, Name: TableName}}, nil
}

func (s *session) list() ([]Binding, error) {
	ok, err := nftutil.TableExists(s.c, nftables.TableFamilyIPv4, TableName)
	if err != nil || !ok {
		return nil, err
	}
	m, err := s.c.GetSetByName(s.table, mapDNAT)
	if err != nil {
		return nil, fmt.Errorf("floatingip: read map %s: %w", mapDNAT, err)
	}
	elems, err := s.c.GetSetElements(m)
	if err != nil {
		return nil, fmt.Errorf("floatingip: read map %s: %w", mapDNAT, err)
	}
	var out []Binding
	for _, e := range elems {
		f, ok1 := netip.AddrFromSlice(e.Key)
		x, ok2 := netip.AddrFromSlice(e.Val)
		if ok1 && ok2 {
			out = append(out, Binding{Floating: f, Fixed: x})
		}
	}
	slices.SortFunc(out, func(a, b Binding) int { return a.Floating.Compare(b.Floating) })
	return out, nil
}

// List returns the bindings, sorted by floating IP, as the kernel holds
// them.
func (b *Binder) List(ctx context.Context) ([]Binding, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	s, err := b.open()
	if err != nil {
		return nil, err
	}
	defer s.ns.Close()
	return s.list()
}

// Bind binds floating to fixed: the address floating/32 on the public
// interface, DNAT of traffic to it, SNAT of traffic from fixed leaving
// through the public interface. Binding the same pair again changes
// nothing; see the package documentation for the errors.
func (b *Binder) Bind(ctx context.Context, floating, fixed netip.Addr) (err error) {
	if err := checkAddr("floating", floating); err != nil {
		return err
	}
	if err := checkAddr("fixed", fixed); err != nil {
		return err
	}
	if floating == fixed {
		return fmt.Errorf("%w: floating and fixed IP are both %s", ErrInvalidAddress, floating)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	s, err := b.open()
	if err != nil {
		return err
	}
	defer s.ns.Close()
	link, err := s.ns.Link(b.public)
	if err != nil {
		return fmt.Errorf("floatingip: look up %s: %w", b.public, err)
	}
	if link == nil {
		return fmt.Errorf("%w: %s in %s", ErrNoInterface, b.public, s.ns.Path())
	}
	cur, err := s.list()
	if err != nil {
		return err
	}
	bound := false
	for _, x := range cur {
		switch {
		case x.Floating == floating && x.Fixed == fixed:
			bound = true
		case x.Floating == floating:
			return fmt.Errorf("%w: floating IP %s is bound to %s", ErrAlreadyBound, floating, x.Fixed)
		case x.Fixed == fixed:
			return fmt.Errorf("%w: fixed IP %s has floating IP %s", ErrAlreadyBound, fixed, x.Floating)
		}
	}

	// The address first; removed again if the NAT transaction fails.
	addr := &netlink.Addr{IPNet: &net.IPNet{IP: floating.AsSlice(), Mask: net.CIDRMask(32, 32)}}
	addErr := s.ns.Handle().AddrAdd(link, addr)
	if addErr != nil && !errors.Is(addErr, unix.EEXIST) {
		return fmt.Errorf("floatingip: add %s to %s: %w", floating, b.public, addErr)
	}
	if addErr == nil && !bound {
		u := undo.Stack{Log: b.opts.logger, Op: "floatingip: bind", ID: floating.String()}
		defer func() { err = u.Fail(ctx, err) }()
		u.Push(func(context.Context) error {
			if err := s.ns.Handle().AddrDel(link, addr); err != nil && !linkutil.IsNotFound(err) {
				return fmt.Errorf("floatingip: remove address %s again: %w", floating, err)
			}
			return nil
		})
	}
	if bound {
		return nil
	}
	if len(cur) == 0 {
		b.build(s)
	}
	dnat := &nftables.Set{Table: s.table, Name: mapDNAT}
	snat := &nftables.Set{Table: s.table, Name: mapSNAT}
	if err := s.c.SetAddElements(dnat, []nftables.SetElement{{Key: floating.AsSlice(), Val: fixed.AsSlice()}}); err != nil {
		return fmt.Errorf("floatingip: %w", err)
	}
	if err := s.c.SetAddElements(snat, []nftables.SetElement{{Key: fixed.AsSlice(), Val: floating.AsSlice()}}); err != nil {
		return fmt.Errorf("floatingip: %w", err)
	}
	if h := b.opts.commitHook; h != nil {
		if err := h(); err != nil {
			return fmt.Errorf("floatingip: bind %s to %s: %w", floating, fixed, err)
		}
	}
	if err := s.c.Flush(); err != nil {
		return fmt.Errorf("floatingip: bind %s to %s: nftables transaction: %w", floating, fixed, err)
	}
	b.opts.logger.Debug("floatingip: bound", "floating", floating, "fixed", fixed)
	return nil
}

// build queues the table, its maps and NAT chains.
func (b *Binder) build(s *session) {
	c, t := s.c, s.table
	nftutil.DeleteTable(c, t)
	c.AddTable(t)
	for _, name := range []string{mapDNAT, mapSNAT} {
		_ = c.AddSet(&nftables.Set{Table: t, Name: name, ID: nftutil.SetID(), IsMap: true,
			KeyType: nftables.TypeIPAddr, DataType: nftables.TypeIPAddr}, nil)
	}
	accept := nftables.ChainPolicyAccept
	dnat := []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 16, Len: 4},
		&expr.Lookup{SourceRegister: 1, DestRegister: 1, IsDestRegSet: true, SetName: mapDNAT},
		&expr.NAT{Type: expr.NATTypeDestNAT, Family: unix.NFPROTO_IPV4, RegAddrMin: 1},
	}
	for _, h := range []struct {
		name string
		hook *nftables.ChainHook
	}{{"prerouting", nftables.ChainHookPrerouting}, {"output", nftables.ChainHookOutput}} {
		ch := c.AddChain(&nftables.Chain{Name: h.name, Table: t, Type: nftables.ChainTypeNAT, Hooknum: h.hook,
			Priority: nftables.ChainPriorityNATDest, Policy: &accept})
		c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: dnat})
	}
	ch := c.AddChain(&nftables.Chain{Name: "postrouting", Table: t, Type: nftables.ChainTypeNAT,
		Hooknum: nftables.ChainHookPostrouting, Priority: nftables.ChainPriorityNATSource, Policy: &accept})
	c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: slices.Concat(
		nftutil.MetaEq(expr.MetaKeyOIFNAME, nftutil.IfName(b.public)),
		[]expr.Any{
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 12, Len: 4},
			&expr.Lookup{SourceRegister: 1, DestRegister: 1, IsDestRegSet: true, SetName: mapSNAT},
			&expr.NAT{Type: expr.NATTypeSourceNAT, Family: unix.NFPROTO_IPV4, RegAddrMin: 1},
		})})
}

// Unbind removes the binding of floating: its NAT entries (the table with
// the last one) and its address. A floating IP that is not bound succeeds.
func (b *Binder) Unbind(ctx context.Context, floating netip.Addr) error {
	if err := checkAddr("floating", floating); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	s, err := b.open()
	if err != nil {
		return err
	}
	defer s.ns.Close()
	cur, err := s.list()
	if err != nil {
		return err
	}
	i := slices.IndexFunc(cur, func(x Binding) bool { return x.Floating == floating })
	if i >= 0 {
		x := cur[i]
		if len(cur) == 1 {
			nftutil.DeleteTable(s.c, s.table)
		} else {
			if err := s.c.SetDeleteElements(&nftables.Set{Table: s.table, Name: mapDNAT}, []nftables.SetElement{{Key: x.Floating.AsSlice()}}); err != nil {
				return fmt.Errorf("floatingip: %w", err)
			}
			if err := s.c.SetDeleteElements(&nftables.Set{Table: s.table, Name: mapSNAT}, []nftables.SetElement{{Key: x.Fixed.AsSlice()}}); err != nil {
				return fmt.Errorf("floatingip: %w", err)
			}
		}
		if err := s.c.Flush(); err != nil {
			return fmt.Errorf("floatingip: unbind %s: nftables transaction: %w", floating, err)
		}
	} else {
		return nil // not bound: its address, if any, is not ours
	}
	link, err := s.ns.Link(b.public)
	if err != nil || link == nil {
		return err
	}
	addr := &netlink.Addr{IPNet: &net.IPNet{IP: floating.AsSlice(), Mask: net.CIDRMask(32, 32)}}
	if err := s.ns.Handle().AddrDel(link, addr); err != nil && !linkutil.IsNotFound(err) && !errors.Is(err, unix.EADDRNOTAVAIL) {
		return fmt.Errorf("floatingip: remove %s from %s: %w", floating, b.public, err)
	}
	b.opts.logger.Debug("floatingip: unbound", "floating", floating)
	return nil
}
