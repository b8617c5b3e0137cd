package main

import (
	"fmt"
	"io"
	"strings"

	units "github.com/docker/go-units"
	"github.com/spf13/cobra"

	"github.com/dockervisor/dockervisor/hypervisor"
)

// agentCommands are the operations a compute agent needs beyond the power
// operations: resize, reconcile, resume.
func (a *app) agentCommands() []*cobra.Command {
	return []*cobra.Command{a.resizeCommand(), a.reconcileCommand(), a.resumeCommand()}
}

func (a *app) resizeCommand() *cobra.Command {
	var (
		vcpus  int
		memory string
		hard   bool
	)
	c := &cobra.Command{
		Use:   "resize ID [--vcpus N] [--memory SIZE] [--hard-cpu-limit]",
		Short: "Change an instance's vCPUs and memory limit in place, without a restart",
		Long: `Change the vCPUs (CPU shares), the hard CPU cap and the memory limit of an
instance, running or stopped, without restarting it. Flags not given keep
their current value, but for --hard-cpu-limit: a resize sets a whole new
flavor, as Nova's does, so a hard CPU cap holds only if given again. A
memory limit below what the instance uses now is
refused (exit code 6) and changes nothing; a limit cannot be removed from a
live instance.`,
		Example:           "  dvctl resize web --vcpus 2 --memory 256MiB",
		Args:              exactArgs(1),
		ValidArgsFunction: a.completeInstances,
		RunE: func(cmd *cobra.Command, args []string) error {
			drv, err := a.driver()
			if err != nil {
				return err
			}
			info, err := drv.Info(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			f := hypervisor.Flavor{VCPUs: info.VCPUs, MemoryMB: info.MemoryMB, HardCPULimit: hard}
			if cmd.Flags().Changed("vcpus") {
				f.VCPUs = vcpus
			}
			if memory != "" {
				n, err := units.RAMInBytes(memory)
				if err != nil {
					return usageError{fmt.Errorf("--memory %q: %w", memory, err)}
				}
				if strings.Trim(memory, "0123456789") == "" {
					n <<= 20
				}
				f.MemoryMB = n >> 20
			}
			return a.eachID(cmd, args, func(c *cobra.Command, id string) error { return drv.Resize(c.Context(), id, f) })
		},
	}
	c.Flags().IntVar(&vcpus, "vcpus", 0, "virtual CPUs")
	c.Flags().StringVar(&memory, "memory", "", "memory limit: 256 (MiB), 256MiB, 1GiB")
	c.Flags().BoolVar(&hard, "hard-cpu-limit", false, "also cap CPU time at --vcpus CPUs")
	return c
}

func (a *app) reconcileCommand() *cobra.Command {
	var (
		known  []string
		policy string
		resume bool
	)
	c := &cobra.Command{
		Use:   "reconcile",
		Short: "Find unknown, half-spawned and orphaned instances, and act on them",
		Long: `Compare this driver's instances and state records with the instances a caller
knows (--known, repeatable; default: every instance that exists now, so
that only half-spawned instances and orphaned records are found), and with
--policy stop or remove act on what is unknown or half-spawned (remove also
drops orphaned records). --resume also starts known instances that should
run but are stopped (after a host or engine restart). The default policy
only reports.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var p hypervisor.ReconcilePolicy
			switch policy {
			case "report":
				p = hypervisor.ReconcileReportOnly
			case "stop":
				p = hypervisor.ReconcileStop
			case "remove":
				p = hypervisor.ReconcileRemove
			default:
				return usageError{fmt.Errorf("--policy %q: want report, stop or remove", policy)}
			}
			drv, err := a.driver()
			if err != nil {
				return err
			}
			if !cmd.Flags().Changed("known") {
				list, err := drv.List(cmd.Context(), hypervisor.ListOptions{})
				if err != nil {
					return err
				}
				for _, in := range list {
					known = append(known, in.ID)
				}
			}
			rep, err := drv.Reconcile(cmd.Context(), hypervisor.ReconcileOptions{Known: known, Policy: p, Resume: resume})
			if err != nil {
				return err
			}
			return a.emit(rep, func(w io.Writer) {
				row(w, "FOUND", "IDS")
				for _, r := range []struct {
					k   string
					ids []string
				}{{"unknown", rep.Unknown}, {"half-spawned", rep.HalfSpawned}, {"orphaned", rep.Orphaned}, {"missing", rep.Missing},
					{"busy", rep.Busy}, {"stopped", rep.Stopped}, {"removed", rep.Removed}, {"resumed", rep.Resumed}} {
					row(w, r.k, strings.Join(r.ids, " "))
				}
				for _, f := range rep.Failed {
					row(w, "failed", f.Error())
				}
			})
		},
	}
	c.Flags().StringSliceVar(&known, "known", nil, "IDs of the instances the caller knows (repeatable)")
	c.Flags().StringVar(&policy, "policy", "report", "report, stop or remove")
	c.Flags().BoolVar(&resume, "resume", false, "also start known instances that should run")
	_ = c.RegisterFlagCompletionFunc("policy", cobra.FixedCompletions([]string{"report", "stop", "remove"}, cobra.ShellCompDirectiveNoFileComp))
	return c
}

func (a *app) resumeCommand() *cobra.Command {
	return &cobra.Command{
		Use:               "resume [ID...]",
		Short:             "Start instances that should run but are stopped (after a host or engine restart)",
		ValidArgsFunction: a.completeInstances,
		RunE: func(cmd *cobra.Command, args []string) error {
			drv, err := a.driver()
			if err != nil {
				return err
			}
			rep, err := drv.Resume(cmd.Context(), hypervisor.ResumeOptions{Only: args})
			if err != nil {
				return err
			}
			return a.emit(rep, func(w io.Writer) {
				row(w, "RESUMED", strings.Join(rep.Resumed, " "))
				for _, f := range rep.Failed {
					row(w, "failed", f.Error())
				}
			})
		},
	}
}

func (a *app) imagePrefetchCommand() *cobra.Command {
	return &cobra.Command{
		Use:               "prefetch ID...",
		Short:             "Fetch store images into the engine's cache without spawning (warm a host)",
		Args:              minArgs(1),
		ValidArgsFunction: a.completeImages,
		RunE: func(cmd *cobra.Command, args []string) error {
			drv, err := a.driver()
			if err != nil {
				return err
			}
			var done []map[string]string
			for _, id := range args {
				if err := drv.PrefetchImage(cmd.Context(), id); err != nil {
					return err
				}
				done = append(done, map[string]string{"id": id, "state": "cached"})
			}
			return a.emit(done, func(w io.Writer) {
				row(w, "ID", "STATE")
				for _, d := range done {
					row(w, d["id"], d["state"])
				}
			})
		},
	}
}

func (a *app) imagePruneCommand() *cobra.Command {
	var (
		opts    hypervisor.PruneOptions
		maxSize string
	)
	c := &cobra.Command{
		Use:   "prune --older-than DURATION | --max-size SIZE",
		Short: "Remove cached store images no instance uses from the engine",
		Long: `Remove images the driver fetched from its image store into the engine and that
no instance (in any state) uses: those unused for --older-than, then the
least recently used while the cache is larger than --max-size. With neither
bound nothing is removed. The store keeps its images.`,
		Example: "  dvctl image prune --older-than 24h\n  dvctl image prune --max-size 10GiB",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if maxSize != "" {
				n, err := units.RAMInBytes(maxSize)
				if err != nil {
					return usageError{fmt.Errorf("--max-size %q: %w", maxSize, err)}
				}
				opts.MaxTotalBytes = n
			}
			drv, err := a.driver()
			if err != nil {
				return err
			}
			rep, err := drv.PruneImages(cmd.Context(), opts)
			if err != nil {
				return err
			}
			return a.emit(rep, func(w io.Writer) {
				row(w, "STORE ID", "SIZE", "LAST USED", "IN USE", "ACTION")
				for _, c := range rep.Removed {
					row(w, c.StoreID, bytesIEC(uint64(max(c.Size, 0))), ago(c.LastUsed), c.InUse, "removed")
				}
				for _, c := range rep.Kept {
					row(w, c.StoreID, bytesIEC(uint64(max(c.Size, 0))), ago(c.LastUsed), c.InUse, "kept")
				}
				fmt.Fprintf(w, "%s freed\n", bytesIEC(uint64(max(rep.FreedBytes, 0))))
			})
		},
	}
	c.Flags().DurationVar(&opts.OlderThan, "older-than", 0, "remove images unused for this long")
	c.Flags().StringVar(&maxSize, "max-size", "", "remove the least recently used until the cache holds at most this (10GiB)")
	return c
}
