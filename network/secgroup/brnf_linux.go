package secgroup

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/dockervisor/dockervisor/internal/kmod"
	"github.com/dockervisor/dockervisor/network"
	"github.com/dockervisor/dockervisor/network/internal/linkutil"
)

// bridgeNetfilterSysctls are the switches that make bridged IPv4 and IPv6
// packets traverse the ip and ip6 hooks, where the port chains are. They
// exist per network namespace once br_netfilter is active.
var bridgeNetfilterSysctls = []string{
	"/proc/sys/net/bridge/bridge-nf-call-iptables",
	"/proc/sys/net/bridge/bridge-nf-call-ip6tables",
}

// bridgeNetfilter makes ns's IPv4 and IPv6 hooks see bridged packets, as
// Neutron's Linux-bridge and hybrid firewalls do before they filter:
// br_netfilter active (loaded with modprobe where the kernel has it as a
// module, as on Debian's kernels; built in on others) and both switches
// of bridgeNetfilterSysctls on. Without it, the port chains would see no
// bridged packet and every port would be silently unfiltered; a kernel
// without br_netfilter is a [*network.KernelFeatureError].
func bridgeNetfilter(ctx context.Context, ns *linkutil.NS) error {
	present := func() (bool, error) {
		var ok bool
		err := ns.Do(func() error {
			_, err := os.Stat(bridgeNetfilterSysctls[0])
			ok = err == nil
			if errors.Is(err, fs.ErrNotExist) {
				err = nil
			}
			return err
		})
		return ok, err
	}
	ok, err := present()
	if err != nil {
		return fmt.Errorf("secgroup: bridge netfilter in %s: %w", ns.Path(), err)
	}
	if !ok {
		if err := kmod.Load(ctx, "br_netfilter"); err != nil {
			return &network.KernelFeatureError{Feature: "bridge netfilter (br_netfilter)", Config: "CONFIG_BRIDGE_NETFILTER", Err: err}
		}
		if ok, err = present(); err != nil || !ok {
			return &network.KernelFeatureError{Feature: "bridge netfilter (br_netfilter)", Config: "CONFIG_BRIDGE_NETFILTER",
				Err: fmt.Errorf("br_netfilter is loaded, but %s has no %s (%v)", ns.Path(), bridgeNetfilterSysctls[0], err)}
		}
	}
	return ns.Do(func() error {
		for _, p := range bridgeNetfilterSysctls {
			v, err := os.ReadFile(p)
			if err != nil {
				return fmt.Errorf("secgroup: bridge netfilter in %s: %w", ns.Path(), err)
			}
			if string(bytes.TrimSpace(v)) == "1" {
				continue
			}
			if err := os.WriteFile(p, []byte("1"), 0o644); err != nil {
				return fmt.Errorf("secgroup: bridge netfilter in %s: turn on %s: %w", ns.Path(), p, err)
			}
		}
		return nil
	})
}
