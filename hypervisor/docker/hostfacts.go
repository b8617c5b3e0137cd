package docker

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/google/uuid"
	"github.com/moby/moby/client"

	"github.com/dockervisor/dockervisor/hypervisor"
)

// nodeUUIDFile is the file under the state directory that holds the node
// UUID. It is node-wide: every driver sharing the state directory reports
// the same UUID.
const nodeUUIDFile = "node-uuid"

var uuidPattern = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// HostFacts reports the node: a UUID generated once and kept in the state
// directory (node-uuid), the engine host's name, its global IP addresses
// (of this machine's interfaces for a local engine; of the endpoint's
// host for a TCP one), and the CPU architecture, OS, kernel and engine
// versions the engine reports.
func (d *hostRoom) HostFacts(ctx context.Context) (hypervisor.HostFacts, error) {
	f, err := d.hostFacts(ctx)
	return f, opErr("host-facts", "", err)
}

func (d *hostRoom) hostFacts(ctx context.Context) (hypervisor.HostFacts, error) {
	api, err := d.engine(ctx)
	if err != nil {
		return hypervisor.HostFacts{}, err
	}
	id, err := d.nodeUUID()
	if err != nil {
		return hypervisor.HostFacts{}, err
	}
	f, err := d.facts(ctx, api)
	if err != nil {
		return hypervisor.HostFacts{}, err
	}
	v, err := api.ServerVersion(ctx, client.ServerVersionOptions{})
	if err != nil {
		return hypervisor.HostFacts{}, classify(err, hypervisor.ErrNotFound)
	}
	addrs, err := d.hostAddresses(ctx)
	if err != nil {
		return hypervisor.HostFacts{}, err
	}
	return hypervisor.HostFacts{
		NodeUUID:      id,
		Hostname:      f.name,
		Addresses:     addrs,
		Architecture:  v.Arch,
		OS:            v.Os,
		KernelVersion: f.kernel,
		EngineVersion: v.Version,
	}, nil
}

// nodeUUID reads the node UUID, creating it on first use. Concurrent
// first callers (several drivers) agree: the file is linked into place,
// which fails if another caller was first, and then read.
func (d *hostRoom) nodeUUID() (string, error) {
	path := filepath.Join(d.opts.stateDir, nodeUUIDFile)
	for range 3 {
		b, err := os.ReadFile(path)
		if err == nil {
			id := strings.TrimSpace(string(b))
			if !uuidPattern.MatchString(id) {
				return "", fmt.Errorf("node UUID file %s holds %q", path, id)
			}
			return id, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("node UUID: %w", err)
		}
		tmp, err := os.CreateTemp(d.opts.stateDir, ".node-uuid-")
		if err != nil {
			return "", fmt.Errorf("node UUID: %w", err)
		}
		_, werr := tmp.WriteString(uuid.NewString() + "\n")
		serr := tmp.Sync()
		cerr := tmp.Close()
		if err := errors.Join(werr, serr, cerr); err != nil {
			os.Remove(tmp.Name())
			return "", fmt.Errorf("node UUID: %w", err)
		}
		lerr := os.Link(tmp.Name(), path)
		os.Remove(tmp.Name())
		if lerr != nil && !errors.Is(lerr, fs.ErrExist) {
			return "", fmt.Errorf("node UUID: %w", lerr)
		}
	}
	return "", errors.New("node UUID: could not create")
}

// hostAddresses returns the engine host's global unicast addresses.
func (d *hostRoom) hostAddresses(ctx context.Context) ([]netip.Addr, error) {
	var out []netip.Addr
	if d.isLocalEngine() {
		ifaddrs, err := net.InterfaceAddrs()
		if err != nil {
			return nil, fmt.Errorf("host addresses: %w", err)
		}
		for _, a := range ifaddrs {
			if p, err := netip.ParsePrefix(a.String()); err == nil && p.Addr().IsGlobalUnicast() {
				out = append(out, p.Addr().Unmap())
			}
		}
	} else {
		h := d.opts.host
		if h == "" {
			h = os.Getenv(client.EnvOverrideHost)
		}
		u, err := url.Parse(h)
		if err != nil {
			return nil, fmt.Errorf("%w: docker host %q: %w", hypervisor.ErrInvalidArgument, h, err)
		}
		ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", u.Hostname())
		if err != nil {
			return nil, fmt.Errorf("%w: resolve %s: %w", hypervisor.ErrUnavailable, u.Hostname(), err)
		}
		for _, ip := range ips {
			if ip.IsGlobalUnicast() || ip.IsLoopback() {
				out = append(out, ip.Unmap())
			}
		}
	}
	slices.SortFunc(out, func(a, b netip.Addr) int { return a.Compare(b) })
	return slices.Compact(out), nil
}
