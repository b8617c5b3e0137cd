package main

import (
	"fmt"
	"io"
	"net/netip"

	"github.com/spf13/cobra"

	"github.com/dockervisor/dockervisor/hypervisor"
	"github.com/dockervisor/dockervisor/network"
)

func (a *app) vifCommand() *cobra.Command {
	c := &cobra.Command{
		Use:   "vif",
		Short: "List, hot-plug and hot-unplug an instance's interfaces (Linux bridge ports)",
		Args:  noArgs,
		RunE: func(*cobra.Command, []string) error {
			return usageError{fmt.Errorf("vif: name a subcommand (see dvctl vif --help)")}
		},
	}
	list := &cobra.Command{
		Use:               "list ID",
		Short:             "List an instance's VIFs",
		Args:              exactArgs(1),
		ValidArgsFunction: a.completeInstances,
		RunE: func(cmd *cobra.Command, args []string) error {
			in, err := a.info(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			vifs := in.VIFs
			if vifs == nil {
				vifs = []network.VIF{}
			}
			return a.emit(vifs, func(w io.Writer) {
				row(w, "DEVICE", "PORT", "TYPE", "BRIDGE", "MAC", "ADDRESSES")
				for i, v := range vifs {
					var addrs []string
					for _, s := range v.Subnets {
						for _, ip := range s.IPs {
							addrs = append(addrs, netip.PrefixFrom(ip, s.CIDR.Bits()).String())
						}
					}
					row(w, fmt.Sprintf("eth%d", i), v.ID, v.Type, v.Bridge, v.Address, dash(fmt.Sprint(addrs)))
				}
			})
		},
	}
	var (
		vif     network.VIF
		mac, ip string
		gateway string
	)
	attach := &cobra.Command{
		Use:               "attach ID --port PORT-ID --bridge BRIDGE --ip ADDR/PREFIX",
		Short:             "Hot-plug a Linux bridge port into a running instance",
		Args:              exactArgs(1),
		ValidArgsFunction: a.completeInstances,
		RunE: func(cmd *cobra.Command, args []string) error {
			vif.Type = network.VIFTypeBridge
			var err error
			if mac != "" {
				if vif.Address, err = network.ParseMAC(mac); err != nil {
					return err
				}
			}
			if ip != "" {
				pfx, err := netip.ParsePrefix(ip)
				if err != nil {
					return usageError{fmt.Errorf("--ip %q: want ADDR/PREFIX", ip)}
				}
				sub := network.Subnet{CIDR: pfx.Masked(), IPs: []netip.Addr{pfx.Addr()}}
				if gateway != "" {
					if sub.Gateway, err = netip.ParseAddr(gateway); err != nil {
						return usageError{fmt.Errorf("--gateway %q: %w", gateway, err)}
					}
				}
				vif.Subnets = []network.Subnet{sub}
			}
			drv, err := a.driver()
			if err != nil {
				return err
			}
			if err := drv.AttachInterface(cmd.Context(), args[0], vif); err != nil {
				return err
			}
			return a.emit(vif, func(w io.Writer) { row(w, "attached", vif.ID, "to", args[0]) })
		},
	}
	f := attach.Flags()
	f.StringVar(&vif.ID, "port", "", "port ID (its first 11 characters name the host devices)")
	f.StringVar(&vif.Bridge, "bridge", "", "Linux bridge (created if missing)")
	f.StringVar(&mac, "mac", "", "guest MAC (default: the kernel's choice)")
	f.StringVar(&ip, "ip", "", "guest address with prefix length, such as 10.0.0.5/24")
	f.StringVar(&gateway, "gateway", "", "the subnet's gateway")
	f.IntVar(&vif.MTU, "mtu", 0, "MTU (default: the kernel's)")
	detach := &cobra.Command{
		Use:               "detach ID PORT-ID",
		Short:             "Hot-unplug a port from an instance",
		Args:              exactArgs(2),
		ValidArgsFunction: a.completeInstances,
		RunE: func(cmd *cobra.Command, args []string) error {
			drv, err := a.driver()
			if err != nil {
				return err
			}
			in, err := drv.Info(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			for _, v := range in.VIFs {
				if v.ID == args[1] {
					if err := drv.DetachInterface(cmd.Context(), args[0], v); err != nil {
						return err
					}
					return a.emit(v, func(w io.Writer) { row(w, "detached", v.ID, "from", args[0]) })
				}
			}
			return fmt.Errorf("%w: instance %s has no port %s", hypervisor.ErrNotFound, args[0], args[1])
		},
	}
	c.AddCommand(list, attach, detach)
	return c
}
