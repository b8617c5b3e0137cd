package dhcp

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/dockervisor/dockervisor/internal/atomicfile"
	"github.com/dockervisor/dockervisor/network"
	"github.com/dockervisor/dockervisor/network/internal/linkutil"
	"github.com/dockervisor/dockervisor/pidproc"
)

// Server is a handle on the DHCP server whose files are in one directory:
// the dnsmasq process it started there, and the hosts it serves. The
// process outlives the handle (and the program that started it); any
// program can take a handle with [Open] and change the hosts or stop it.
// Changes to one directory are serialised across processes with a lock
// file in it.
type Server struct {
	cfg Config
}

// Config returns the server's configuration.
func (s *Server) Config() Config { return s.cfg }

// Dir returns the server's directory.
func (s *Server) Dir() string { return s.cfg.Dir }

func (s *Server) path(name string) string { return filepath.Join(s.cfg.Dir, name) }

// Start starts dnsmasq for cfg with hosts, or brings the server already
// running in cfg.Dir to cfg and hosts: with the same configuration it only
// reloads the hosts (SIGHUP), else it restarts it. It returns when dnsmasq
// is ready to serve, or with its refusal (ErrStart, with what it said). The
// process is detached: it runs until Stop, whoever calls it.
func Start(ctx context.Context, cfg Config, hosts []Host) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := cfg.validateHosts(hosts); err != nil {
		return nil, err
	}
	bin, err := cfg.binary()
	if err != nil {
		return nil, err
	}
	cfg.Binary = bin
	cfg.Dir = filepath.Clean(cfg.Dir)
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("dhcp: %w", err)
	}
	if err := searchable(cfg.Dir); err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg}
	unlock, err := s.lock(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()
	conf := cfg.render()
	old, _ := os.ReadFile(s.path(confFile))
	have, err := s.Hosts()
	if err != nil {
		return nil, err
	}
	if err := s.writeHosts(hosts); err != nil {
		return nil, err
	}
	p, err := s.process()
	switch {
	case err == nil && string(old) == conf:
		return s, s.reload(ctx, p, have, hosts)
	case err == nil:
		if err := p.Terminate(ctx); err != nil {
			return nil, err
		}
	case !errors.Is(err, ErrNotRunning):
		return nil, err
	}
	if _, err := s.dropStale(have, hosts); err != nil {
		return nil, err
	}
	cj, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := writeFile(s.path(configJSON), cj); err != nil {
		return nil, err
	}
	if err := writeFile(s.path(confFile), []byte(conf)); err != nil {
		return nil, err
	}
	if err := s.run(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// binary finds dnsmasq.
func (c Config) binary() (string, error) {
	if c.Binary != "" {
		if _, err := exec.LookPath(c.Binary); err != nil {
			return "", fmt.Errorf("%w: %w", ErrNotInstalled, err)
		}
		return c.Binary, nil
	}
	if p, err := exec.LookPath("dnsmasq"); err == nil {
		return p, nil
	}
	if _, err := exec.LookPath("/usr/sbin/dnsmasq"); err != nil {
		return "", fmt.Errorf("%w: %w", ErrNotInstalled, err)
	}
	return "/usr/sbin/dnsmasq", nil
}

// searchable checks that dnsmasq, once it dropped its privileges, can
// reach files in dir: dir and every directory above must be searchable by
// others.
func searchable(dir string) error {
	for d := dir; ; d = filepath.Dir(d) {
		st, err := os.Stat(d)
		if err != nil {
			return fmt.Errorf("dhcp: %w", err)
		}
		if st.Mode().Perm()&0o001 == 0 {
			return fmt.Errorf("%w: directory %s is not searchable by others (mode %v), so dnsmasq cannot re-read its hosts from %s after it dropped its privileges", ErrInvalidConfig, d, st.Mode().Perm(), dir)
		}
		if d == "/" || d == "." {
			return nil
		}
	}
}

// Open returns a handle on the server whose directory is dir, from the
// configuration Start saved there. A directory without one is ErrNotRunning.
func Open(dir string) (*Server, error) {
	b, err := os.ReadFile(filepath.Join(dir, configJSON))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: no server in %s", ErrNotRunning, dir)
	}
	if err != nil {
		return nil, fmt.Errorf("dhcp: %w", err)
	}
	var cfg Config
	if err := json.Unmarshal(b, &cfg); err != nil {
		return nil, fmt.Errorf("dhcp: %s: %w", filepath.Join(dir, configJSON), err)
	}
	cfg.Dir = filepath.Clean(dir)
	return &Server{cfg: cfg}, nil
}

// run starts dnsmasq in the configured namespace and waits until it is
// ready: dnsmasq forks its daemon and exits once the daemon serves, or
// with the daemon's error.
func (s *Server) run(ctx context.Context) error {
	ns, err := linkutil.Open(s.cfg.NetNS)
	if err != nil {
		return fmt.Errorf("dhcp: namespace: %w", err)
	}
	defer ns.Close()
	_ = os.Remove(s.path(pidFile))
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, s.cfg.Binary, "--conf-file="+s.path(confFile))
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.Dir = "/"
	cmd.WaitDelay = 5 * time.Second
	// The fork happens on the thread switched into the namespace, so
	// dnsmasq starts there.
	err = ns.Do(cmd.Run)
	if err != nil {
		return fmt.Errorf("%w in %s: %w: %s", ErrStart, s.cfg.Dir, err, strings.TrimSpace(out.String()))
	}
	p, err := s.process()
	if err != nil {
		return fmt.Errorf("%w in %s: %w", ErrStart, s.cfg.Dir, err)
	}
	return p.Close()
}

// process returns the running dnsmasq started for this directory: the PID
// in its PID file, checked to be dnsmasq with this directory's
// configuration. ErrNotRunning if there is none.
func (s *Server) process() (*pidproc.Process, error) {
	p, err := pidproc.Open(s.path(pidFile), "--conf-file="+s.path(confFile))
	if errors.Is(err, pidproc.ErrNotRunning) {
		return nil, fmt.Errorf("%w: %w", ErrNotRunning, err)
	}
	if err != nil {
		return nil, fmt.Errorf("dhcp: %w", err)
	}
	return p, nil
}

// Running reports whether the server's dnsmasq runs.
func (s *Server) Running() bool {
	p, err := s.process()
	if err != nil {
		return false
	}
	p.Close()
	return true
}

// PID returns the PID of the server's dnsmasq, or ErrNotRunning.
func (s *Server) PID() (int, error) {
	p, err := s.process()
	if err != nil {
		return 0, err
	}
	p.Close()
	return p.PID, nil
}

// Stop stops the server's dnsmasq and waits for it to exit (killing it if
// ctx ends first). The directory stays, with its leases, so that Start
// can bring it back. A server that does not run is no error.
func (s *Server) Stop(ctx context.Context) error {
	unlock, err := s.lock(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	p, err := s.process()
	if errors.Is(err, ErrNotRunning) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := p.Terminate(ctx); err != nil {
		return err
	}
	if err := os.Remove(s.path(pidFile)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("dhcp: %w", err)
	}
	return nil
}

// Hosts returns the hosts the server serves.
func (s *Server) Hosts() ([]Host, error) {
	b, err := os.ReadFile(s.path(hostsFile + ".json"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("dhcp: %w", err)
	}
	var hosts []Host
	if err := json.Unmarshal(b, &hosts); err != nil {
		return nil, fmt.Errorf("dhcp: %s: %w", s.path(hostsFile+".json"), err)
	}
	return hosts, nil
}

// SetHosts replaces the hosts the server serves and makes dnsmasq re-read
// them (SIGHUP). A server that does not run gets them at its next Start.
func (s *Server) SetHosts(ctx context.Context, hosts []Host) error {
	return s.updateHosts(ctx, func([]Host) []Host { return hosts })
}

// AddHost adds h to the hosts, replacing a host with the same MAC.
func (s *Server) AddHost(ctx context.Context, h Host) error {
	return s.updateHosts(ctx, func(hosts []Host) []Host {
		i := slices.IndexFunc(hosts, func(x Host) bool { return x.MAC.String() == h.MAC.String() })
		if i < 0 {
			return append(hosts, h)
		}
		hosts[i] = h
		return hosts
	})
}

// RemoveHost removes the host with MAC mac. A MAC the server does not know
// is no error.
func (s *Server) RemoveHost(ctx context.Context, mac network.MAC) error {
	return s.updateHosts(ctx, func(hosts []Host) []Host {
		return slices.DeleteFunc(hosts, func(x Host) bool { return x.MAC.String() == mac.String() })
	})
}

func (s *Server) updateHosts(ctx context.Context, f func([]Host) []Host) error {
	unlock, err := s.lock(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	have, err := s.Hosts()
	if err != nil {
		return err
	}
	want := f(slices.Clone(have))
	if err := s.cfg.validateHosts(want); err != nil {
		return err
	}
	if err := s.writeHosts(want); err != nil {
		return err
	}
	p, err := s.process()
	if errors.Is(err, ErrNotRunning) {
		_, err := s.dropStale(have, want)
		return err
	}
	if err != nil {
		return err
	}
	return s.reload(ctx, p, have, want)
}

// reload makes the running dnsmasq p serve the hosts file just written
// (want; have were served before): a SIGHUP, or, when it holds a lease
// the hosts no longer justify, a restart without that lease. dnsmasq keeps
// a lease until it ends (a day), and would not give its address to the
// host that has it now; Neutron's DHCP agent releases such leases
// (dhcp_release) for the same reason. It closes p.
func (s *Server) reload(ctx context.Context, p *pidproc.Process, have, want []Host) error {
	leases, err := s.Leases()
	if err != nil {
		p.Close()
		return err
	}
	if !slices.ContainsFunc(leases, func(l Lease) bool { return stale(l, have, want) }) {
		defer p.Close()
		return p.Signal(unix.SIGHUP)
	}
	if err := p.Terminate(ctx); err != nil {
		return err
	}
	if _, err := s.dropStale(have, want); err != nil {
		return err
	}
	return s.run(ctx)
}

// stale reports whether lease l is one the hosts no longer justify: its
// address is no host's, or (DHCPv4) it is another MAC's, or (DHCPv6,
// whose leases name no MAC) it changed hands since have.
func stale(l Lease, have, want []Host) bool {
	owner := func(hosts []Host) (Host, bool) {
		i := slices.IndexFunc(hosts, func(h Host) bool { return slices.Contains(h.IPs, l.IP) })
		if i < 0 {
			return Host{}, false
		}
		return hosts[i], true
	}
	w, ok := owner(want)
	if !ok {
		return true
	}
	if l.MAC != nil {
		return l.MAC.String() != w.MAC.String()
	}
	h, ok := owner(have)
	return !ok || h.MAC.String() != w.MAC.String()
}

// dropStale removes the stale leases from the lease file of a dnsmasq that
// does not run, and reports whether there were any.
func (s *Server) dropStale(have, want []Host) (bool, error) {
	b, err := os.ReadFile(s.path(leasesFile))
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("dhcp: %w", err)
	}
	var out []string
	dropped := false
	v6 := false
	for _, line := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
		if strings.HasPrefix(line, "duid ") {
			v6 = true
			out = append(out, line)
			continue
		}
		in := line
		if v6 {
			in = "duid -\n" + line // a DHCPv6 lease, which names no MAC
		}
		ls, err := parseLeases([]byte(in))
		if err == nil && len(ls) == 1 && stale(ls[0], have, want) {
			dropped = true
			continue
		}
		out = append(out, line)
	}
	if !dropped {
		return false, nil
	}
	return true, writeFile(s.path(leasesFile), []byte(strings.Join(out, "\n")+"\n"))
}

// writeHosts writes the hosts file dnsmasq reads and the hosts as JSON.
func (s *Server) writeHosts(hosts []Host) error {
	if hosts == nil {
		hosts = []Host{}
	}
	j, err := json.Marshal(hosts)
	if err != nil {
		return err
	}
	if err := writeFile(s.path(hostsFile+".json"), j); err != nil {
		return err
	}
	return writeFile(s.path(hostsFile), []byte(s.cfg.renderHosts(hosts)))
}

// lock takes the directory's lock file, waiting as long as ctx allows.
func (s *Server) lock(ctx context.Context) (func(), error) {
	f, err := os.OpenFile(s.path(lockFile), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("dhcp: lock: %w", err)
	}
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("dhcp: lock %s: %w", s.path(lockFile), err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("dhcp: waiting for the lock of %s: %w", s.cfg.Dir, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// writeFile replaces name atomically with data, mode 0644 (dnsmasq reads
// the hosts file as nobody).
func writeFile(name string, data []byte) error {
	f, err := atomicfile.Create(filepath.Dir(name), ".tmp-", 0o644, false)
	if err != nil {
		return fmt.Errorf("dhcp: %w", err)
	}
	defer f.Remove()
	if err := f.Chmod(0o644); err != nil { // the umask may have narrowed it
		return fmt.Errorf("dhcp: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("dhcp: %w", err)
	}
	if err := f.Rename(name); err != nil {
		return fmt.Errorf("dhcp: %w", err)
	}
	return nil
}

// Leases returns the leases in the server's lease file, which dnsmasq
// rewrites whenever it gives or renews one.
func (s *Server) Leases() ([]Lease, error) {
	b, err := os.ReadFile(s.path(leasesFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("dhcp: %w", err)
	}
	return parseLeases(b)
}
