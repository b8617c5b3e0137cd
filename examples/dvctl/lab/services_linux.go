package lab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"syscall"
	"time"

	"github.com/dockervisor/dockervisor/network"
	"github.com/dockervisor/dockervisor/network/dhcp"
	"github.com/dockervisor/dockervisor/network/metadata"
	"github.com/dockervisor/dockervisor/network/svcport"
	"github.com/dockervisor/dockervisor/pidproc"
)

// servicesRoot holds the run directories of the labs' services:
// dnsmasq drops its privileges and re-reads its hosts file as nobody, so
// the directories are searchable by others (mode 0755).
const servicesRoot = "/run/dvctl-services"

// svcRunDir is where the services of lab name keep their files.
func svcRunDir(stateDir, lab string) string {
	abs, err := filepath.Abs(stateDir)
	if err != nil {
		abs = stateDir
	}
	return filepath.Join(servicesRoot, hash(abs, lab, "services")[:16])
}

const (
	metadataPID    = "metadata.pid"
	metadataConfig = "config.json"
)

// metadataListener is one network the lab's metadata service answers on.
type metadataListener struct {
	Netns   string `json:"netns"` // path of the service namespace
	Network string `json:"network"`
}

// upServices gives each network with dhcp its service namespace, DHCP
// server (with a host entry for every port of the file on it) and the
// lab's metadata service, and removes the services of networks that lost
// dhcp. Each is recorded in the state file before it is made.
func upServices(ctx context.Context, f *File, st *State, netr *VIFRouter, opts Options, record func(Action)) error {
	want := f.DHCPNetworks()
	for _, s := range slices.Clone(st.Services) {
		if slices.Contains(want, s.Network) {
			continue
		}
		if err := removeService(ctx, st, netr, s); err != nil {
			return err
		}
		record(Action{Kind: "dhcp", Name: s.Network, ID: s.Netns, Action: "removed"})
		if err := st.Update(func(st *State) {
			st.Services = slices.DeleteFunc(st.Services, func(x Service) bool { return x.Network == s.Network })
		}); err != nil {
			return err
		}
	}
	if len(want) == 0 {
		return stopMetadata(ctx, st, record)
	}
	dir := svcRunDir(opts.StateDir, f.Name)
	if err := mkdirPublic(dir); err != nil {
		return err
	}
	ln, err := netr.net(st)
	if err != nil {
		return err
	}
	var listeners []metadataListener
	for _, n := range want {
		port, err := f.servicePort(n)
		if err != nil {
			return err
		}
		svc := Service{Network: n, Netns: f.ServiceNetnsName(n), Port: port, DHCPDir: filepath.Join(dir, n)}
		if err := st.Update(func(st *State) {
			st.Services = slices.DeleteFunc(st.Services, func(x Service) bool { return x.Network == n })
			st.Services = append(st.Services, svc)
		}); err != nil {
			return err
		}
		_, statErr := os.Stat("/run/netns/" + svc.Netns)
		sp := svcport.Port{Namespace: svc.Netns, VIF: port, Metadata: true}
		if err := svcport.Ensure(ctx, ln.disp, sp); err != nil {
			return err
		}
		sub, err := f.subnet(n)
		if err != nil {
			return err
		}
		if err := f.dhcpMeta(n, &sub); err != nil {
			return err
		}
		ds, _ := dhcp.SubnetOf(sub)
		hosts, err := f.dhcpHosts(n)
		if err != nil {
			return err
		}
		cfg := dhcp.Config{Dir: svc.DHCPDir, NetNS: sp.Path(), Interface: svcport.IfName, Subnets: []dhcp.Subnet{ds}, MTU: f.Networks[n].MTU}
		if sub.DHCPServer.Is4() {
			cfg.MetadataRoute = sub.DHCPServer
		}
		if _, err := dhcp.Start(ctx, cfg, hosts); err != nil {
			return err
		}
		if statErr != nil {
			record(Action{Kind: "dhcp", Name: n, ID: svc.Netns, Action: "created"})
		}
		listeners = append(listeners, metadataListener{Netns: sp.Path(), Network: f.NetworkID(n)})
	}
	mdDir := filepath.Join(dir, "metadata")
	if err := st.Update(func(st *State) { st.MetadataDir = mdDir }); err != nil {
		return err
	}
	started, err := ensureMetadata(ctx, mdDir, listeners, opts)
	if err != nil {
		return err
	}
	if started {
		record(Action{Kind: "metadata", Name: "service", ID: mdDir, Action: "started"})
	}
	return nil
}

func mkdirPublic(dir string) error {
	for _, d := range []string{servicesRoot, dir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
		if err := os.Chmod(d, 0o755); err != nil {
			return err
		}
	}
	return nil
}

// removeService stops a network's DHCP server, unplugs its port and
// deletes its service namespace. The port's bridge lives in the lab's
// namespace: if that is gone, so are the bridge and its ports.
func removeService(ctx context.Context, st *State, netr *VIFRouter, s Service) error {
	var errs []error
	if srv, err := dhcp.Open(s.DHCPDir); err == nil {
		errs = append(errs, srv.Stop(ctx))
	} else if !errors.Is(err, dhcp.ErrNotRunning) {
		errs = append(errs, err)
	}
	sp := svcport.Port{Namespace: s.Netns, VIF: s.Port, Metadata: true}
	if _, err := os.Stat("/run/netns/" + st.Netns); st.Netns != "" && err == nil {
		ln, err := netr.net(st)
		if err != nil {
			return errors.Join(append(errs, err)...)
		}
		errs = append(errs, svcport.Remove(ctx, ln.disp, sp))
	} else {
		errs = append(errs, deleteNetns(s.Netns))
	}
	errs = append(errs, os.RemoveAll(s.DHCPDir))
	return errors.Join(errs...)
}

// downServices stops the lab's metadata service and removes every
// network's services, then the lab's run directory of them.
func downServices(ctx context.Context, st *State, opts Options, record func(Action)) error {
	if st.MetadataDir == "" && len(st.Services) == 0 {
		return nil
	}
	var runDir string
	if st.MetadataDir != "" {
		runDir = filepath.Dir(st.MetadataDir)
	}
	errs := []error{stopMetadata(ctx, st, record)}
	netr, closeNet := opts.net()
	defer func() { _ = closeNet() }()
	for _, s := range slices.Clone(st.Services) {
		_, statErr := os.Stat("/run/netns/" + s.Netns)
		err := removeService(ctx, st, netr, s)
		errs = append(errs, err)
		if err == nil {
			if statErr == nil {
				record(Action{Kind: "dhcp", Name: s.Network, ID: s.Netns, Action: "destroyed"})
			}
			errs = append(errs, st.Update(func(st *State) {
				st.Services = slices.DeleteFunc(st.Services, func(x Service) bool { return x.Network == s.Network })
			}))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if runDir != "" {
		_ = os.Remove(runDir)       // the lab's run directory, empty now
		_ = os.Remove(servicesRoot) // when no other lab has services
	}
	return nil
}

// ensureMetadata runs the lab's metadata service for listeners, as a
// detached process of this program (it outlives a dvctl command, as the
// lab's switch does), with its registrations kept in dir. A service that
// runs with the same listeners is left alone; one with others is
// restarted (the registrations stay). It reports whether it started one.
func ensureMetadata(ctx context.Context, dir string, listeners []metadataListener, opts Options) (bool, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return false, err
	}
	b, err := json.MarshalIndent(listeners, "", "  ")
	if err != nil {
		return false, err
	}
	old, _ := os.ReadFile(filepath.Join(dir, metadataConfig))
	p, err := pidproc.Open(filepath.Join(dir, metadataPID), dir)
	switch {
	case err == nil && string(old) == string(b):
		return false, p.Close()
	case err == nil:
		if err := p.Terminate(ctx); err != nil {
			return false, err
		}
	case !errors.Is(err, pidproc.ErrNotRunning):
		return false, err
	}
	if err := os.WriteFile(filepath.Join(dir, metadataConfig), b, 0o600); err != nil {
		return false, err
	}
	_ = os.Remove(filepath.Join(dir, metadataPID))
	self := opts.Self
	if len(self) == 0 {
		exe, err := os.Executable()
		if err != nil {
			return false, err
		}
		self = []string{exe}
	}
	logf, err := os.OpenFile(filepath.Join(dir, "metadata.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return false, err
	}
	defer logf.Close()
	cmd := exec.Command(self[0], append(slices.Clone(self[1:]), "lab", "serve-metadata", dir)...)
	cmd.Args[0] = "dvctl"
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return false, fmt.Errorf("lab: start the metadata service: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	// Ready once it answers on its control socket (it writes its PID
	// file after its listeners are up).
	c := metadata.NewClient(metadataSocket(dir))
	defer c.Close()
	deadline := time.NewTimer(30 * time.Second)
	defer deadline.Stop()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		if _, err := os.Stat(filepath.Join(dir, metadataPID)); err == nil {
			if err := c.Unregister(ctx, "dvctl-probe"); err == nil {
				return true, nil
			}
		}
		select {
		case err := <-exited:
			log, _ := os.ReadFile(filepath.Join(dir, "metadata.log"))
			return false, fmt.Errorf("lab: the metadata service exited (%v): %s", err, tail(log, 1024))
		case <-deadline.C:
			return false, fmt.Errorf("lab: the metadata service in %s did not come up", dir)
		case <-ctx.Done():
			return false, ctx.Err()
		case <-tick.C:
		}
	}
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// stopMetadata stops the lab's metadata service, if it has one, and
// removes its directory.
func stopMetadata(ctx context.Context, st *State, record func(Action)) error {
	dir := st.MetadataDir
	if dir == "" {
		return nil
	}
	p, err := pidproc.Open(filepath.Join(dir, metadataPID), dir)
	switch {
	case err == nil:
		if err := p.Terminate(ctx); err != nil {
			return err
		}
		record(Action{Kind: "metadata", Name: "service", ID: dir, Action: "stopped"})
	case !errors.Is(err, pidproc.ErrNotRunning):
		return err
	}
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	return st.Update(func(st *State) { st.MetadataDir = "" })
}

// ServeMetadata is the lab's metadata service, run by `dvctl lab
// serve-metadata DIR` as a detached process: Nova's metadata service
// (package network/metadata) answering in each service namespace named in
// DIR's configuration, with its registrations kept in DIR and taken
// through a control socket there. It writes its PID file once it serves,
// and returns when ctx ends.
func ServeMetadata(ctx context.Context, dir string) error {
	b, err := os.ReadFile(filepath.Join(dir, metadataConfig))
	if err != nil {
		return err
	}
	var listeners []metadataListener
	if err := json.Unmarshal(b, &listeners); err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	svc, err := metadata.Open(metadata.WithStateDir(filepath.Join(dir, "instances")), metadata.WithLogger(log))
	if err != nil {
		return err
	}
	defer svc.Close()
	if _, err := svc.ListenControl(ctx, metadataSocket(dir)); err != nil {
		return err
	}
	for _, l := range listeners {
		if _, err := svc.ListenNetns(ctx, l.Netns, l.Network); err != nil {
			return err
		}
		log.Info("serving", "network", l.Network, "netns", l.Netns, "instances", len(svc.Instances()))
	}
	if err := os.WriteFile(filepath.Join(dir, metadataPID), fmt.Appendf(nil, "%d\n", os.Getpid()), 0o600); err != nil {
		return err
	}
	<-ctx.Done()
	return os.Remove(filepath.Join(dir, metadataPID))
}

// dhcpServerOf returns the DHCP server of the lab network of vif, if it
// has one.
func (s *State) dhcpServerOf(vif network.VIF) (*dhcp.Server, bool) {
	for _, svc := range s.Services {
		if svc.Port.NetworkID == vif.NetworkID {
			srv, err := dhcp.Open(svc.DHCPDir)
			return srv, err == nil
		}
	}
	return nil, false
}
