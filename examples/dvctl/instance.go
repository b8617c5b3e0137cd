package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	units "github.com/docker/go-units"
	"github.com/spf13/cobra"

	"github.com/dockervisor/dockervisor/hypervisor"
)

func (a *app) instanceCommands() []*cobra.Command {
	return []*cobra.Command{
		a.spawnCommand(),
		a.listCommand(),
		a.infoCommand(),
		a.idsCommand("destroy ID...", "Stop and remove instances (a missing one is no error)", []string{"rm"},
			func(c *cobra.Command, id string) error { return a.drv.Destroy(c.Context(), id) }),
		a.idsCommand("soft-delete ID...", "Stop instances and mark them soft-deleted (restorable)", nil,
			func(c *cobra.Command, id string) error { return a.drv.SoftDelete(c.Context(), id) }),
		a.idsCommand("restore ID...", "Bring soft-deleted instances back, running", nil,
			func(c *cobra.Command, id string) error { return a.drv.Restore(c.Context(), id) }),
		a.rebootCommand(),
		a.stopCommand(),
		a.idsCommand("start ID...", "Start shut-down or crashed instances", []string{"power-on"},
			func(c *cobra.Command, id string) error { return a.drv.PowerOn(c.Context(), id) }),
		a.idsCommand("pause ID...", "Freeze running instances", nil,
			func(c *cobra.Command, id string) error { return a.drv.Pause(c.Context(), id) }),
		a.idsCommand("unpause ID...", "Thaw paused instances", nil,
			func(c *cobra.Command, id string) error { return a.drv.Unpause(c.Context(), id) }),
	}
}

func (a *app) spawnCommand() *cobra.Command {
	var (
		spec              hypervisor.InstanceSpec
		memory            string
		env, labels, meta []string
		userData          string
		sshKeys           []string
		boot              string
		createOnly        bool
	)
	c := &cobra.Command{
		Use:   "spawn ID --image IMAGE [flags] [-- COMMAND [ARG...]]",
		Short: "Create and start an instance",
		Long: `Create and start an instance. With an image store configured, --image is a
store image ID, fetched into the engine when missing (with a progress bar on a
terminal); otherwise an image reference the engine has. Ctrl-C during spawn
rolls back everything it did.`,
		Example: `  dvctl spawn web1 --image test/busybox:1 --vcpus 2 --memory 128MiB -- sleep 3600`,
		Args:    minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			spec.ID = args[0]
			spec.Command = args[1:]
			if spec.Image == "" {
				return usageError{fmt.Errorf("spawn: --image is required")}
			}
			if memory != "" {
				n, err := units.RAMInBytes(memory)
				if err != nil {
					return usageError{fmt.Errorf("--memory %q: %w", memory, err)}
				}
				if strings.Trim(memory, "0123456789") == "" {
					n <<= 20 // a bare number is MiB, as in a flavor
				}
				spec.MemoryMB = n >> 20
			}
			var err error
			if spec.Env, err = parseKV("env", env); err != nil {
				return err
			}
			if spec.Labels, err = parseKV("label", labels); err != nil {
				return err
			}
			if spec.Metadata, err = parseKV("meta", meta); err != nil {
				return err
			}
			spec.Boot = hypervisor.BootMode(boot)
			if userData != "" {
				if spec.UserData, err = os.ReadFile(userData); err != nil {
					return usageError{fmt.Errorf("--user-data: %w", err)}
				}
			}
			for i, k := range sshKeys {
				if rest, ok := strings.CutPrefix(k, "@"); ok {
					b, err := os.ReadFile(rest)
					if err != nil {
						return usageError{fmt.Errorf("--ssh-key: %w", err)}
					}
					k = strings.TrimSpace(string(b))
				}
				spec.SSHKeys = append(spec.SSHKeys, hypervisor.SSHKey{Name: fmt.Sprintf("key-%d", i), Data: k})
			}
			drv, err := a.driver()
			if err != nil {
				return err
			}
			in, err := drv.SpawnWithOptions(cmd.Context(), spec, hypervisor.SpawnOptions{CreateOnly: createOnly})
			if err != nil {
				return err
			}
			return a.emit(in, func(w io.Writer) { instanceTable(w, []hypervisor.Instance{in}) })
		},
	}
	f := c.Flags()
	f.StringVar(&spec.Image, "image", "", "store image ID, or engine image reference without a store")
	f.StringVar(&spec.Name, "name", "", "host name (default: the ID)")
	f.IntVar(&spec.VCPUs, "vcpus", 1, "virtual CPUs (CPU shares, 1024 each)")
	f.BoolVar(&spec.HardCPULimit, "hard-cpu-limit", false, "also cap CPU time at --vcpus CPUs")
	f.StringVar(&memory, "memory", "", "memory limit: 256 (MiB), 256MiB, 1GiB (default: none)")
	f.StringArrayVarP(&env, "env", "e", nil, "environment KEY=VALUE (repeatable)")
	f.StringArrayVar(&labels, "label", nil, "label KEY=VALUE (repeatable)")
	f.StringArrayVar(&meta, "meta", nil, "instance metadata KEY=VALUE (repeatable)")
	f.BoolVar(&createOnly, "create-only", false, "create the instance (image, limits, VIFs plugged) without starting it; start starts it")
	f.StringVar(&boot, "boot", "", "app (the image's command) or os (its init as PID 1); default: the image's "+hypervisor.OSImageLabel+" label decides")
	_ = c.RegisterFlagCompletionFunc("boot", cobra.FixedCompletions([]string{"app", "os"}, cobra.ShellCompDirectiveNoFileComp))
	f.StringVar(&userData, "user-data", "", "file with the user-data for the config drive (cloud-init)")
	f.StringArrayVar(&sshKeys, "ssh-key", nil, "SSH public key for the config drive, or @FILE (repeatable)")
	_ = c.RegisterFlagCompletionFunc("image", a.completeImages)
	return c
}

func (a *app) listCommand() *cobra.Command {
	var (
		states []string
		labels []string
	)
	c := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List instances",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var opts hypervisor.ListOptions
			for _, s := range states {
				var st hypervisor.State
				if err := st.UnmarshalText([]byte(s)); err != nil {
					return usageError{fmt.Errorf("--state: %w", err)}
				}
				opts.States = append(opts.States, st)
			}
			var err error
			if opts.Labels, err = parseKV("label", labels); err != nil {
				return err
			}
			drv, err := a.driver()
			if err != nil {
				return err
			}
			list, err := drv.List(cmd.Context(), opts)
			if err != nil {
				return err
			}
			if list == nil {
				list = []hypervisor.Instance{}
			}
			return a.emit(list, func(w io.Writer) { instanceTable(w, list) })
		},
	}
	c.Flags().StringSliceVar(&states, "state", nil, "only instances in these states (running, paused, shutdown, crashed, soft-deleted, created)")
	c.Flags().StringArrayVar(&labels, "label", nil, "only instances with label KEY=VALUE (repeatable)")
	_ = c.RegisterFlagCompletionFunc("state", cobra.FixedCompletions(
		[]string{"running", "paused", "shutdown", "crashed", "soft-deleted", "created"}, cobra.ShellCompDirectiveNoFileComp))
	return c
}

func instanceTable(w io.Writer, list []hypervisor.Instance) {
	row(w, "ID", "NAME", "STATE", "IMAGE", "VCPUS", "MEMORY", "CREATED", "CONTAINER")
	for _, in := range list {
		row(w, in.ID, in.Name, in.State, in.Image, in.VCPUs, mib(in.MemoryMB, "unlimited"), ago(in.CreatedAt), short(in.BackendID, 12))
	}
}

func (a *app) infoCommand() *cobra.Command {
	c := &cobra.Command{
		Use:               "info ID",
		Aliases:           []string{"show"},
		Short:             "Show an instance with its state and resource use",
		Args:              exactArgs(1),
		ValidArgsFunction: a.completeInstances,
		RunE: func(cmd *cobra.Command, args []string) error {
			in, err := a.info(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return a.emit(in, func(w io.Writer) {
				row(w, "ID", in.ID)
				row(w, "Name", in.Name)
				row(w, "State", in.State)
				row(w, "Image", in.Image)
				row(w, "Container", in.BackendID)
				row(w, "PID", pid(in.PID))
				row(w, "vCPUs", in.VCPUs)
				row(w, "Memory limit", mib(in.MemoryMB, "unlimited"))
				row(w, "Memory used", fmt.Sprintf("%s of %s", bytesIEC(in.MemoryBytes), bytesIEC(in.MaxMemoryBytes)))
				row(w, "CPU time", dur(in.CPUTime))
				row(w, "Exit code", in.ExitCode)
				row(w, "Created", fmt.Sprintf("%s (%s)", in.CreatedAt.Format(time.RFC3339), ago(in.CreatedAt)))
				if !in.StartedAt.IsZero() {
					row(w, "Started", fmt.Sprintf("%s (%s)", in.StartedAt.Format(time.RFC3339), ago(in.StartedAt)))
				}
				row(w, "Labels", kvs(in.Labels))
				row(w, "Metadata", kvs(in.Metadata))
			})
		},
	}
	return c
}

func pid(p int) string {
	if p <= 0 {
		return "-"
	}
	return fmt.Sprint(p)
}

// idsCommand makes a command that applies op to each ID in turn and stops at
// the first error. It prints each instance's state afterwards.
func (a *app) idsCommand(use, short string, aliases []string, op func(*cobra.Command, string) error) *cobra.Command {
	return &cobra.Command{
		Use:               use,
		Aliases:           aliases,
		Short:             short,
		Args:              minArgs(1),
		ValidArgsFunction: a.completeInstances,
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, err := a.driver(); err != nil {
				return err
			}
			return a.eachID(cmd, args, op)
		},
	}
}

// opResult is the JSON of a state-changing command: the instance and the
// state it is in afterwards ("gone" when destroyed).
type opResult struct {
	ID    string `json:"id"`
	State string `json:"state"`
}

func (a *app) eachID(cmd *cobra.Command, ids []string, op func(*cobra.Command, string) error) error {
	var results []opResult
	for _, id := range ids {
		if err := op(cmd, id); err != nil {
			return err
		}
		st := "gone"
		if in, err := a.drv.Info(cmd.Context(), id); err == nil {
			st = in.State.String()
		}
		results = append(results, opResult{ID: id, State: st})
	}
	return a.emit(results, func(w io.Writer) {
		row(w, "ID", "STATE")
		for _, r := range results {
			row(w, r.ID, r.State)
		}
	})
}

func (a *app) rebootCommand() *cobra.Command {
	var opts hypervisor.RebootOptions
	c := a.idsCommand("reboot ID...", "Restart instances (gracefully, or --hard)", nil,
		func(c *cobra.Command, id string) error { return a.drv.Reboot(c.Context(), id, opts) })
	c.Flags().BoolVar(&opts.Hard, "hard", false, "kill and start; also starts a stopped instance")
	c.Flags().DurationVarP(&opts.Timeout, "timeout", "t", 0, "graceful stop timeout of a soft reboot (default: the driver's)")
	return c
}

func (a *app) stopCommand() *cobra.Command {
	var opts hypervisor.StopOptions
	c := a.idsCommand("stop ID...", "Stop instances gracefully, killing after the timeout", []string{"power-off"},
		func(c *cobra.Command, id string) error { return a.drv.PowerOff(c.Context(), id, opts) })
	c.Flags().DurationVarP(&opts.Timeout, "timeout", "t", 0, "wait this long before killing; negative kills at once (default: the driver's)")
	return c
}
