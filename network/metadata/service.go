package metadata

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/dockervisor/dockervisor/configdrive"
	"github.com/dockervisor/dockervisor/errclass"
	"github.com/dockervisor/dockervisor/internal/statestore"
)

// Errors of the package, tested with [errors.Is]. Each wraps one of the
// module's error classes (package errclass).
var (
	// ErrInvalidInstance means a registration is unusable: its boot data
	// does not validate (it wraps the configdrive error too). It is an
	// [errclass.ErrInvalidArgument].
	ErrInvalidInstance = errclass.New("metadata: invalid instance", errclass.ErrInvalidArgument)
	// ErrAddressInUse means another registered instance has the same
	// fixed IP on the same network: the service could not tell them
	// apart. It is an [errclass.ErrInvalidArgument]: the registration
	// names an address it cannot have.
	ErrAddressInUse = errclass.New("metadata: address registered to another instance", errclass.ErrInvalidArgument)
	// ErrClosed means the service was closed. It is an
	// [errclass.ErrUnavailable].
	ErrClosed = errclass.New("metadata: service closed", errclass.ErrUnavailable)
)

// Option configures a Service.
type Option func(*options) error

type options struct {
	stateDir string
	log      *slog.Logger
	now      func() time.Time
	build    []configdrive.Option
}

// WithDHCPDomain sets the domain appended to the instances' host names,
// as Nova's [api] dhcp_domain does for its metadata service (see
// configdrive.WithDHCPDomain; the default is configdrive's,
// "novalocal"). An invalid domain is ErrInvalidInstance.
func WithDHCPDomain(domain string) Option {
	return func(o *options) error {
		opt := configdrive.WithDHCPDomain(domain)
		if err := configdrive.CheckOptions(opt); err != nil {
			return fmt.Errorf("%w: %w", ErrInvalidInstance, err)
		}
		o.build = append(o.build, opt)
		return nil
	}
}

// WithStateDir keeps the registrations (and the passwords instances
// posted) in dir, one record per instance written atomically, so that a
// new Service opened on dir after a restart serves every instance again.
func WithStateDir(dir string) Option {
	return func(o *options) error {
		if dir == "" {
			return fmt.Errorf("%w: empty state directory", ErrInvalidInstance)
		}
		o.stateDir = dir
		return nil
	}
}

// WithLogger sets the logger: failed requests at Debug, what cannot be
// returned (a listener that stopped with an error) at Warn. The default
// discards everything.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) error {
		if l == nil {
			return errors.New("metadata: nil logger")
		}
		o.log = l
		return nil
	}
}

// WithClock is a test hook: the clock that decides which OpenStack
// versions are in the future (Nova hides those from the version list).
func WithClock(now func() time.Time) Option {
	return func(o *options) error {
		if now == nil {
			return errors.New("metadata: nil clock")
		}
		o.now = now
		return nil
	}
}

// Service is Nova's metadata service for the instances registered with
// it. It is safe for concurrent use.
type Service struct {
	opts  options
	store *statestore.Store[record]

	mu        sync.RWMutex
	byID      map[string]*entry
	byAddr    map[addrKey]*entry
	listeners map[*Listener]struct{}
	closed    bool
}

// entry is one registered instance.
type entry struct {
	in       configdrive.Instance
	data     *instanceData
	addrs    []addrKey
	password string
}

// addrKey is how an instance is told apart: a fixed IP on a network, as
// Neutron's metadata proxy does (the network of the proxy the request came
// through, the request's source address).
type addrKey struct {
	network string
	ip      netip.Addr
}

// record is an entry as kept in the state directory.
type record struct {
	Instance configdrive.Instance `json:"instance"`
	Password string               `json:"password,omitempty"`
}

// Open returns a Service. With WithStateDir it loads the registrations
// kept there; a record that no longer validates is skipped (and logged).
func Open(opts ...Option) (*Service, error) {
	o := options{log: slog.New(slog.DiscardHandler), now: time.Now}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	s := &Service{opts: o, byID: map[string]*entry{}, byAddr: map[addrKey]*entry{}, listeners: map[*Listener]struct{}{}}
	if o.stateDir == "" {
		return s, nil
	}
	st, err := statestore.Open(o.stateDir, statestore.Options[record]{Version: 1})
	if err != nil {
		return nil, fmt.Errorf("metadata: %w", err)
	}
	s.store = st
	keys, err := st.Keys()
	if err != nil {
		return nil, fmt.Errorf("metadata: %w", err)
	}
	slices.Sort(keys)
	for _, k := range keys {
		rec, ok, err := st.Load(k)
		if err != nil || !ok {
			o.log.Warn("metadata: unreadable registration skipped", "key", k, "err", err)
			continue
		}
		e, err := newEntry(rec.Instance, o.build)
		if err != nil {
			o.log.Warn("metadata: invalid registration skipped", "instance", rec.Instance.UUID, "err", err)
			continue
		}
		e.password = rec.Password
		if err := s.conflict(e); err != nil {
			o.log.Warn("metadata: registration skipped", "instance", rec.Instance.UUID, "err", err)
			continue
		}
		s.put(e)
	}
	return s, nil
}

// recordKey is the state-directory key of an instance.
func recordKey(uuid string) string {
	sum := sha256.Sum256([]byte(uuid))
	return hex.EncodeToString(sum[:16])
}

func newEntry(in configdrive.Instance, build []configdrive.Option) (*entry, error) {
	if err := in.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidInstance, err)
	}
	data, err := buildData(in, build...)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidInstance, err)
	}
	e := &entry{in: in, data: data}
	seen := map[addrKey]bool{}
	for _, v := range in.VIFs {
		if v.NetworkID == "" {
			continue // unreachable: requests are told apart by network
		}
		for _, sn := range v.Subnets {
			for _, ip := range sn.IPs {
				k := addrKey{network: v.NetworkID, ip: ip.Unmap()}
				if !seen[k] {
					seen[k] = true
					e.addrs = append(e.addrs, k)
				}
			}
		}
	}
	return e, nil
}

// conflict reports another instance's use of one of e's addresses; s.mu
// is held.
func (s *Service) conflict(e *entry) error {
	for _, k := range e.addrs {
		if other, ok := s.byAddr[k]; ok && other.in.UUID != e.in.UUID {
			return fmt.Errorf("%w: %s on network %s is instance %s's", ErrAddressInUse, k.ip, k.network, other.in.UUID)
		}
	}
	return nil
}

// put adds e to the maps, replacing the entry of the same instance; s.mu
// is held (or s is not shared yet) and conflict said nothing.
func (s *Service) put(e *entry) {
	if old, ok := s.byID[e.in.UUID]; ok {
		for _, k := range old.addrs {
			delete(s.byAddr, k)
		}
	}
	s.byID[e.in.UUID] = e
	for _, k := range e.addrs {
		s.byAddr[k] = e
	}
}

// Register publishes in's metadata (or replaces what was published for
// in.UUID), to requests from each of its fixed IPs on the network of its
// VIF (VIF.NetworkID; a VIF without one is not reachable). A password an
// instance posted is kept. An instance whose boot data does not validate
// is ErrInvalidInstance; a fixed IP another instance has on the same
// network is ErrAddressInUse; both change nothing.
func (s *Service) Register(_ context.Context, in configdrive.Instance) error {
	e, err := newEntry(in, s.opts.build)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	if old, ok := s.byID[in.UUID]; ok {
		e.password = old.password
	}
	if err := s.conflict(e); err != nil {
		return err
	}
	if err := s.save(e); err != nil {
		return err
	}
	s.put(e)
	return nil
}

// save writes e's record, with a state directory; s.mu is held.
func (s *Service) save(e *entry) error {
	if s.store == nil {
		return nil
	}
	if err := s.store.Save(recordKey(e.in.UUID), record{Instance: e.in, Password: e.password}); err != nil {
		return fmt.Errorf("metadata: %w", err)
	}
	return nil
}

// Unregister stops serving the instance uuid. An instance the service does
// not know is no error.
func (s *Service) Unregister(_ context.Context, uuid string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.byID[uuid]; ok {
		for _, k := range e.addrs {
			delete(s.byAddr, k)
		}
		delete(s.byID, uuid)
	}
	if s.store == nil {
		return nil
	}
	if err := s.store.Remove(recordKey(uuid)); err != nil {
		return fmt.Errorf("metadata: %w", err)
	}
	return nil
}

// Instances returns the UUIDs of the registered instances, sorted.
func (s *Service) Instances() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return slices.Sorted(maps.Keys(s.byID))
}

// Instance returns the boot data registered for uuid.
func (s *Service) Instance(uuid string) (configdrive.Instance, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	e, ok := s.byID[uuid]
	if !ok {
		return configdrive.Instance{}, false
	}
	return e.in, true
}

// find returns the instance with fixed IP ip on network.
func (s *Service) find(network string, ip netip.Addr) *entry {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.byAddr[addrKey{network: network, ip: ip.Unmap()}]
}

// setPassword stores an instance's password once: false if it had one.
func (s *Service) setPassword(e *entry, pw string) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cur, ok := s.byID[e.in.UUID]
	if !ok {
		return false, nil // unregistered meanwhile
	}
	if cur.password != "" {
		return false, nil
	}
	cur.password = pw
	if err := s.save(cur); err != nil {
		cur.password = ""
		return false, err
	}
	return true, nil
}

func (s *Service) password(e *entry) string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if cur, ok := s.byID[e.in.UUID]; ok {
		return cur.password
	}
	return ""
}

// Close stops every listener of the service. It is idempotent.
func (s *Service) Close() error {
	s.mu.Lock()
	s.closed = true
	ls := slices.Collect(maps.Keys(s.listeners))
	s.mu.Unlock()
	var errs []error
	for _, l := range ls {
		errs = append(errs, l.Close())
	}
	return errors.Join(errs...)
}
