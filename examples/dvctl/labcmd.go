package main

import (
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/dockervisor/dockervisor/examples/dvctl/lab"
	"github.com/dockervisor/dockervisor/hypervisor/docker"
)

func (a *app) labCommand() *cobra.Command {
	c := &cobra.Command{
		Use:   "lab",
		Short: "Bring labs of instances up and down from a YAML file",
		Long: `A lab file describes instances (image, flavor, command, environment,
metadata, user-data, SSH keys, dependencies, ports), networks (Linux bridges
or Open vSwitch bridges with a subnet, in a private host network namespace
per lab, dvlab-<name>), security groups on the ports, and an external network
(namespace dvlab-<name>-ext, the lab's outside world and router) with floating
IPs. A network with dhcp gets a DHCP server and Nova's metadata service in a
service namespace of its own (dvlab-<name>-<network>), and an instance with
config_drive: false reads its boot data from that service. See
examples/dvctl/demo.yaml.

'lab up FILE' builds it in dependency order and is idempotent: it creates
what is missing, starts what is stopped, replaces what changed in the file,
removes what the file no longer names, re-syncs the security groups and
floating IPs, and changes nothing when the lab is as the file says. 'lab down'
removes everything the lab made (instances, ports, bridges, rules, addresses,
its Open vSwitch and namespaces), even after a failed 'up': a state file per
lab, under --state-dir/labs, records each resource before it is made.

Reach the outside of a lab with: ip netns exec dvlab-<name>-ext COMMAND.`,
		Args: noArgs,
		RunE: func(*cobra.Command, []string) error {
			return usageError{fmt.Errorf("lab: name a subcommand (see dvctl lab --help)")}
		},
	}
	var parallel int
	c.PersistentFlags().IntVar(&parallel, "parallel", 4, "instances made or removed at once")
	opts := func() lab.Options {
		o := lab.Options{StateDir: a.labDir(), Parallel: parallel, Net: a.router}
		if a.g.output != "json" && isTerminal(a.errOut) {
			o.Progress = func(ac lab.Action) { fmt.Fprintf(a.errOut, "%s %s: %s\n", ac.Kind, ac.Name, ac.Action) }
		}
		return o
	}
	// act runs one lab operation on the driver and reports what it did
	// and how long it took.
	act := func(run func(drv *docker.Driver) ([]lab.Action, error)) error {
		drv, err := a.driver()
		if err != nil {
			return err
		}
		start := time.Now()
		acts, err := run(drv)
		if err != nil {
			return err
		}
		return a.emitActions(acts, time.Since(start))
	}
	yamlFiles := func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return []string{"yaml", "yml"}, cobra.ShellCompDirectiveFilterFileExt
	}

	up := &cobra.Command{
		Use:               "up FILE",
		Short:             "Build the lab FILE describes, or bring it back to what FILE says",
		Args:              exactArgs(1),
		ValidArgsFunction: yamlFiles,
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := lab.Load(args[0])
			if err != nil {
				return err
			}
			return act(func(drv *docker.Driver) ([]lab.Action, error) { return lab.Up(cmd.Context(), drv, f, opts()) })
		},
	}
	down := &cobra.Command{
		Use:               "down FILE|NAME",
		Short:             "Remove everything a lab made",
		Args:              exactArgs(1),
		ValidArgsFunction: yamlFiles,
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			if _, err := os.Stat(args[0]); err == nil {
				f, err := lab.Load(args[0])
				if err != nil {
					return err
				}
				name = f.Name
			}
			return act(func(drv *docker.Driver) ([]lab.Action, error) { return lab.Down(cmd.Context(), drv, name, opts()) })
		},
	}
	status := &cobra.Command{
		Use:               "status FILE",
		Short:             "Show each instance of the lab and its state",
		Args:              exactArgs(1),
		ValidArgsFunction: yamlFiles,
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := lab.Load(args[0])
			if err != nil {
				return err
			}
			drv, err := a.driver()
			if err != nil {
				return err
			}
			list, err := lab.Status(cmd.Context(), drv, f)
			if err != nil {
				return err
			}
			net, err := lab.NetStatus(cmd.Context(), a.labDir(), f.Name)
			if err != nil {
				return err
			}
			return a.emit(map[string]any{"name": f.Name, "instances": list, "network": net}, func(w io.Writer) {
				row(w, "NAME", "ID", "STATE", "IMAGE", "CHANGED")
				for _, s := range list {
					row(w, s.Name, s.ID, s.State, s.Image, s.Changed)
				}
				if net.Netns != "" {
					fmt.Fprintf(w, "\nnamespace %s (present: %v)\n", net.Netns, net.NetnsExists)
				}
				if net.OVSDir != "" {
					fmt.Fprintf(w, "open vswitch %s (running: %v)\n", net.OVSDir, net.OVSRunning)
				}
				if len(net.SecurityGroups) > 0 {
					fmt.Fprintf(w, "security groups %s on %d ports\n", strings.Join(net.SecurityGroups, ", "), net.FilteredPorts)
				}
				if net.ExtNetns != "" {
					fmt.Fprintf(w, "external namespace %s (present: %v)\n", net.ExtNetns, net.ExtNetnsExists)
				}
				for _, b := range net.FloatingIPs {
					fmt.Fprintf(w, "floating IP %s -> %s\n", b.Floating, b.Fixed)
				}
				for _, d := range net.DHCP {
					fmt.Fprintf(w, "dhcp %s in %s (running: %v, %d hosts, %d leases)\n", d.Network, d.Netns, d.Running, d.Hosts, d.Leases)
				}
				if net.MetadataDir != "" {
					fmt.Fprintf(w, "metadata service %s (running: %v, %d instances)\n", net.MetadataDir, net.MetadataRunning, net.MetadataInstances)
				}
			})
		},
	}
	var format string
	graph := &cobra.Command{
		Use:               "graph FILE",
		Short:             "Print the lab's topology as Graphviz dot or Mermaid",
		Example:           "  dvctl lab graph lab.yaml | dot -Tsvg > lab.svg\n  dvctl lab graph --format mermaid lab.yaml",
		Args:              exactArgs(1),
		ValidArgsFunction: yamlFiles,
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := lab.Load(args[0])
			if err != nil {
				return err
			}
			return f.Graph(a.out, format)
		},
	}
	graph.Flags().StringVar(&format, "format", "dot", "dot or mermaid")
	_ = graph.RegisterFlagCompletionFunc("format", cobra.FixedCompletions([]string{"dot", "mermaid"}, cobra.ShellCompDirectiveNoFileComp))
	list := &cobra.Command{
		Use:   "list",
		Short: "List the labs that have a state file",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			names, err := lab.ListStates(a.labDir())
			if err != nil {
				return err
			}
			if names == nil {
				names = []string{}
			}
			return a.emit(names, func(w io.Writer) {
				row(w, "LAB")
				for _, n := range names {
					row(w, n)
				}
			})
		},
	}
	serve := &cobra.Command{
		Use:    "serve-metadata DIR",
		Short:  "Run a lab's metadata service (lab up starts it, lab down stops it)",
		Hidden: true,
		Args:   exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGTERM, os.Interrupt)
			defer stop()
			return lab.ServeMetadata(ctx, args[0])
		},
	}
	c.AddCommand(up, down, status, graph, list, serve)
	return c
}

// labResult is the JSON of lab up and lab down.
type labResult struct {
	Actions  []lab.Action `json:"actions"`
	Changed  int          `json:"changed"`
	Duration float64      `json:"duration_seconds"`
}

func (a *app) emitActions(acts []lab.Action, d time.Duration) error {
	res := labResult{Actions: acts, Duration: d.Seconds()}
	if res.Actions == nil {
		res.Actions = []lab.Action{}
	}
	for _, ac := range acts {
		if ac.Action != "unchanged" && ac.Action != "absent" {
			res.Changed++
		}
	}
	return a.emit(res, func(w io.Writer) {
		row(w, "KIND", "NAME", "ID", "ACTION")
		for _, ac := range acts {
			row(w, ac.Kind, ac.Name, ac.ID, ac.Action)
		}
		fmt.Fprintf(w, "%d changed in %s\n", res.Changed, dur(d))
	})
}
