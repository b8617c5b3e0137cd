package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	units "github.com/docker/go-units"
	"github.com/spf13/cobra"

	"github.com/dockervisor/dockervisor/hypervisor"
	"github.com/dockervisor/dockervisor/stats"
)

func (a *app) observeCommands() []*cobra.Command {
	return []*cobra.Command{
		a.consoleCommand(),
		a.eventsCommand(),
		a.statsCommand(),
		a.hostCommand(),
		a.nodesCommand(),
		a.capsCommand(),
	}
}

// parseSince reads a --since value: a duration back from now (10m) or an
// RFC 3339 time.
func parseSince(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		return time.Now().Add(-d), nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, usageError{fmt.Errorf("--since %q: want a duration (10m) or an RFC 3339 time", s)}
	}
	return t, nil
}

// followWindow bounds how much console output one follow window re-reads
// before it moves on.
const followWindow = 4 << 20

func (a *app) consoleCommand() *cobra.Command {
	var (
		opts     hypervisor.ConsoleOptions
		since    string
		follow   bool
		interval time.Duration
	)
	c := &cobra.Command{
		Use:   "console ID | console attach ID",
		Short: "Print an instance's console output",
		Long: `Print an instance's console output (stdout and stderr). --tail keeps the last
lines, --since drops older output, -f follows new output until Ctrl-C.`,
		Args:              exactArgs(1),
		ValidArgsFunction: a.completeInstances,
		RunE: func(cmd *cobra.Command, args []string) error {
			var err error
			if opts.Since, err = parseSince(since); err != nil {
				return err
			}
			drv, err := a.driver()
			if err != nil {
				return err
			}
			ctx, id := cmd.Context(), args[0]
			if !follow {
				out, err := drv.ConsoleOutput(ctx, id, opts)
				if err != nil {
					return err
				}
				_, err = a.out.Write(out)
				return err
			}
			return a.followConsole(ctx, drv, id, opts, interval)
		},
	}
	f := c.Flags()
	f.IntVarP(&opts.TailLines, "tail", "n", 0, "only the last N lines (0: all)")
	f.IntVar(&opts.MaxBytes, "max-bytes", 0, "only the last N bytes (default 1 MiB)")
	f.StringVar(&since, "since", "", "only output since a duration ago (10m) or an RFC 3339 time")
	f.BoolVarP(&follow, "follow", "f", false, "follow new output until interrupted")
	f.DurationVar(&interval, "interval", 250*time.Millisecond, "poll interval of --follow")
	c.AddCommand(a.consoleAttachCommand())
	return c
}

// followConsole prints the console output and then what is added, by polling
// ConsoleOutput over a window of time that starts at a fixed instant: the
// output of a window only grows, so each poll prints what follows the previous
// poll's output. The window moves on after a poll that saw nothing new (the
// new start falls in a quiet gap, so no line is lost or repeated) once it holds
// more than followWindow bytes.
func (a *app) followConsole(ctx context.Context, drv hypervisor.ConsoleReader, id string, opts hypervisor.ConsoleOptions, interval time.Duration) error {
	window := hypervisor.ConsoleOptions{Since: opts.Since, MaxBytes: 8 * followWindow}
	prev, err := drv.ConsoleOutput(ctx, id, window)
	if err != nil {
		return err
	}
	first := prev
	if opts.TailLines > 0 {
		first = lastLines(first, opts.TailLines)
	}
	if opts.MaxBytes > 0 && len(first) > opts.MaxBytes {
		first = first[len(first)-opts.MaxBytes:]
	}
	if _, err := a.out.Write(first); err != nil {
		return err
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil // following ends with Ctrl-C; that is success
		case <-t.C:
		}
		start := time.Now()
		cur, err := drv.ConsoleOutput(ctx, id, window)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return err
		}
		switch {
		case bytes.HasPrefix(cur, prev):
			_, err = a.out.Write(cur[len(prev):])
		default: // the log was cut (rotated, or past MaxBytes): print it anew
			_, err = a.out.Write(cur)
		}
		if err != nil {
			return err
		}
		if len(cur) == len(prev) && len(cur) > followWindow {
			window.Since, cur = start, nil
		}
		prev = cur
	}
}

func lastLines(b []byte, n int) []byte {
	end := len(b)
	if end > 0 && b[end-1] == '\n' {
		end--
	}
	for i := end - 1; i >= 0; i-- {
		if b[i] == '\n' {
			n--
			if n == 0 {
				return b[i+1:]
			}
		}
	}
	return b
}

func (a *app) eventsCommand() *cobra.Command {
	var (
		ids     []string
		types   []string
		reasons []string
		dur     time.Duration
		count   int
		since   string
	)
	c := &cobra.Command{
		Use:   "events",
		Short: "Stream lifecycle events of the instances as they happen",
		Long: `Stream lifecycle events (started, stopped, paused, unpaused, crashed,
destroyed, soft-deleted, restored, rebooted, resized) of this driver's
instances as they happen, until Ctrl-C, --for or --count ends it, each with
its reason (requested by an operation, which it names; exited; oom-killed;
engine-stopped; external). --since first replays the events since a time or
a duration ago, as far as the driver still holds them. With -o json, one
JSON object per line.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			drv, err := a.driver()
			if err != nil {
				return err
			}
			ctx, cancel := context.WithCancel(cmd.Context())
			defer cancel()
			if dur > 0 {
				ctx, cancel = context.WithTimeout(ctx, dur)
				defer cancel()
			}
			// The first call pings the engine, so an unreachable engine is
			// an error here rather than a silent empty stream.
			if _, err := drv.AvailableNodes(ctx); err != nil {
				return err
			}
			from, err := parseSince(since)
			if err != nil {
				return err
			}
			evs, errs := drv.EventsSince(ctx, hypervisor.EventOptions{Since: from})
			if a.g.output != "json" {
				fmt.Fprintf(a.out, "%-35s  %-12s  %-24s  %s\n", "TIME", "TYPE", "ID", "REASON")
			}
			n := 0
			for ev := range evs {
				if (len(ids) > 0 && !contains(ids, ev.ID)) || (len(types) > 0 && !contains(types, string(ev.Type))) ||
					(len(reasons) > 0 && !contains(reasons, string(ev.Reason))) {
					continue
				}
				reason := string(ev.Reason)
				if ev.Operation != "" {
					reason += " (" + ev.Operation + ")"
				}
				line := fmt.Sprintf("%-35s  %-12s  %-24s  %s", ev.Time.Format(time.RFC3339Nano), ev.Type, ev.ID, dash(reason))
				if ev.Type == hypervisor.EventStopped || ev.Type == hypervisor.EventCrashed {
					line += fmt.Sprintf(" exit %d", ev.ExitCode)
				}
				if ev.Flavor != nil {
					line += fmt.Sprintf(" %d vCPU, %s", ev.Flavor.EffectiveVCPUs(), mib(ev.Flavor.MemoryMB, "no memory limit"))
				}
				if err := a.emitLine(ev, line); err != nil {
					return err
				}
				if n++; count > 0 && n >= count {
					cancel()
					go func() {
						for range evs { // what was queued before the cancel
						}
					}()
					break
				}
			}
			if err := <-errs; err != nil {
				return err
			}
			return nil
		},
	}
	c.Flags().StringSliceVar(&ids, "instance", nil, "only events of these instances")
	c.Flags().StringSliceVar(&types, "type", nil, "only events of these types")
	c.Flags().StringSliceVar(&reasons, "reason", nil, "only events of these reasons (requested, exited, oom-killed, engine-stopped, external)")
	c.Flags().StringVar(&since, "since", "", "first replay the events since a duration ago (10m) or an RFC 3339 time")
	c.Flags().DurationVar(&dur, "for", 0, "stop after this long (default: until interrupted)")
	c.Flags().IntVar(&count, "count", 0, "stop after this many events")
	_ = c.RegisterFlagCompletionFunc("instance", a.completeInstances)
	return c
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func (a *app) statsCommand() *cobra.Command {
	var (
		watch, all bool
		interval   time.Duration
	)
	c := &cobra.Command{
		Use:               "stats ID... | stats --all",
		Short:             "Sample instances' CPU, memory, block I/O and interfaces",
		Args:              cobra.ArbitraryArgs,
		ValidArgsFunction: a.completeInstances,
		RunE: func(cmd *cobra.Command, args []string) error {
			drv, err := a.driver()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			if all == (len(args) > 0) {
				return usageError{fmt.Errorf("stats: name instances, or --all")}
			}
			sample := func(ctx context.Context) ([]stats.Instance, error) {
				if all {
					return drv.AllInstanceStats(ctx) // one call for every instance
				}
				var out []stats.Instance
				for _, id := range args {
					s, err := drv.InstanceStats(ctx, id)
					if err != nil {
						return nil, err
					}
					out = append(out, s)
				}
				return out, nil
			}
			if !watch {
				list, err := sample(ctx)
				if err != nil {
					return err
				}
				return a.emit(list, func(w io.Writer) { statsTable(w, list, true) })
			}
			header := true
			for r := range stats.Watch(ctx, interval, sample) {
				if ctx.Err() != nil {
					break
				}
				if r.Err != nil {
					return r.Err
				}
				if a.g.output == "json" {
					for _, s := range r.Value {
						if err := a.emitLine(s, ""); err != nil {
							return err
						}
					}
					continue
				}
				if err := a.emit(nil, func(w io.Writer) { statsTable(w, r.Value, header) }); err != nil {
					return err
				}
				header = false
			}
			return nil
		},
	}
	c.Flags().BoolVarP(&watch, "watch", "w", false, "sample again at every interval until interrupted")
	c.Flags().BoolVarP(&all, "all", "a", false, "every instance of the driver, in one call")
	c.Flags().DurationVar(&interval, "interval", 2*time.Second, "interval of --watch")
	return c
}

func statsTable(w io.Writer, list []stats.Instance, header bool) {
	if header {
		row(w, "TIME", "ID", "CPU%", "CPU TIME", "MEMORY", "LIMIT", "BLOCK R/W", "NET RX/TX")
	}
	for _, s := range list {
		var rx, tx uint64
		var ifs []string
		for _, i := range s.Interfaces {
			rx += i.RxBytes
			tx += i.TxBytes
			ifs = append(ifs, i.Device)
		}
		_ = ifs
		row(w, s.Time.Format("15:04:05"), s.ID, fmt.Sprintf("%.1f", s.CPUPercent), dur(s.CPUTime),
			bytesIEC(s.MemoryBytes), bytesIEC(s.MemoryLimitBytes),
			bytesIEC(s.BlockReadBytes)+" / "+bytesIEC(s.BlockWriteBytes),
			bytesIEC(rx)+" / "+bytesIEC(tx))
	}
}

func (a *app) hostCommand() *cobra.Command {
	var facts bool
	c := &cobra.Command{
		Use:   "host",
		Short: "Show the node's CPUs, memory, disk and instances (--facts: its static facts)",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			drv, err := a.driver()
			if err != nil {
				return err
			}
			if facts {
				hf, err := drv.HostFacts(cmd.Context())
				if err != nil {
					return err
				}
				return a.emit(hf, func(w io.Writer) {
					row(w, "Node UUID", hf.NodeUUID)
					row(w, "Hostname", hf.Hostname)
					var addrs []string
					for _, ad := range hf.Addresses {
						addrs = append(addrs, ad.String())
					}
					row(w, "Addresses", dash(strings.Join(addrs, " ")))
					row(w, "System", hf.OS+"/"+hf.Architecture+", kernel "+hf.KernelVersion)
					row(w, "Engine", hf.EngineVersion)
				})
			}
			h, err := drv.HostResources(cmd.Context())
			if err != nil {
				return err
			}
			return a.emit(h, func(w io.Writer) {
				row(w, "Hostname", h.Hostname)
				row(w, "Hypervisor", h.HypervisorType+" "+h.HypervisorVersion+" (API "+h.APIVersion+")")
				row(w, "vCPUs", fmt.Sprintf("%d used of %d", h.VCPUsUsed, h.VCPUs))
				row(w, "CPU utilisation", fmt.Sprintf("%.1f%%", h.CPUUtilization))
				row(w, "Load average", fmt.Sprintf("%.2f %.2f %.2f", h.LoadAverage[0], h.LoadAverage[1], h.LoadAverage[2]))
				row(w, "Memory", fmt.Sprintf("%s used, %s free of %s; %s claimed by instances",
					mib(h.MemoryUsedMB, "0B"), mib(h.MemoryFreeMB, "0B"), mib(h.MemoryMB, "0B"), mib(h.MemoryClaimedMB, "0B")))
				row(w, "Disk", fmt.Sprintf("%s used of %s", units.BytesSize(float64(h.DiskUsedGB)*(1<<30)), units.BytesSize(float64(h.DiskGB)*(1<<30))))
				row(w, "Uptime", units.HumanDuration(h.Uptime))
				var parts []string
				for _, s := range []string{"running", "paused", "shutdown", "crashed", "soft-deleted", "created", "unknown"} {
					if n := h.Instances[s]; n > 0 {
						parts = append(parts, fmt.Sprintf("%d %s", n, s))
					}
				}
				row(w, "Instances", dash(strings.Join(parts, ", ")))
			})
		},
	}
	c.Flags().BoolVar(&facts, "facts", false, "the node's static facts (node UUID, addresses, kernel, engine) instead")
	return c
}

func (a *app) nodesCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "nodes",
		Short: "List the node names this driver serves",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			drv, err := a.driver()
			if err != nil {
				return err
			}
			nodes, err := drv.AvailableNodes(cmd.Context())
			if err != nil {
				return err
			}
			return a.emit(nodes, func(w io.Writer) {
				row(w, "NODE")
				for _, n := range nodes {
					row(w, n)
				}
			})
		},
	}
}

func (a *app) capsCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "capabilities",
		Short: "Show what the driver, as configured, can do",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			drv, err := a.driver()
			if err != nil {
				return err
			}
			caps := drv.Capabilities()
			return a.emit(caps, func(w io.Writer) {
				row(w, "Pause", caps.Pause)
				row(w, "Reboot", caps.Reboot)
				row(w, "Soft delete", caps.SoftDelete)
				row(w, "Snapshot", caps.Snapshot)
				row(w, "Image store", caps.ImageStore)
				row(w, "VIFs", caps.VIFs)
				row(w, "Hot-plug VIFs", caps.HotplugVIF)
				row(w, "Host resources", caps.HostResources)
				row(w, "Instance stats", caps.InstanceStats)
				row(w, "Events", caps.Events)
			})
		},
	}
}
