package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/dockervisor/dockervisor/hypervisor"
)

// exitStatus is the exit status of a command run by exec, passed on as
// dvctl's own.
type exitStatus int

func (e exitStatus) Error() string { return fmt.Sprintf("command exited with status %d", int(e)) }

// DetachKey ends `console attach`: Ctrl-] (as telnet and virsh console).
const DetachKey = 0x1d

func (a *app) guestCommands() []*cobra.Command {
	return []*cobra.Command{a.execCommand(), a.metadataCommand(), a.osStatusCommand()}
}

// terminal returns the file descriptor of in when it is a terminal.
func terminal(r io.Reader) (int, bool) {
	f, ok := r.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return 0, false
	}
	return int(f.Fd()), true
}

func termSize(fd int) hypervisor.TerminalSize {
	w, h, err := term.GetSize(fd)
	if err != nil {
		return hypervisor.TerminalSize{}
	}
	return hypervisor.TerminalSize{Cols: uint16(w), Rows: uint16(h)}
}

func (a *app) execCommand() *cobra.Command {
	var (
		tty, interactive bool
		env              []string
		spec             hypervisor.ExecSpec
	)
	c := &cobra.Command{
		Use:   "exec ID [flags] -- COMMAND [ARG...]",
		Short: "Run a command in a running instance",
		Long: `Run a command in a running instance and wait for it. dvctl exits with the
command's exit status (127 when the command cannot be started in the
instance), so exec composes in scripts; dvctl's own failures keep their
codes (see dvctl exit-codes). -i passes standard input to the command (its
end closes the command's input); -t runs it on a terminal, in raw mode when
dvctl's standard input is a terminal, following the terminal's size.`,
		Example: `  dvctl exec web -- ip addr
  echo hello | dvctl exec -i web -- cat
  dvctl exec -it web -- sh`,
		Args:              minArgs(2),
		ValidArgsFunction: a.completeInstances,
		RunE: func(cmd *cobra.Command, args []string) error {
			if cmd.ArgsLenAtDash() != 1 {
				return usageError{fmt.Errorf("exec: want ID -- COMMAND [ARG...]")}
			}
			var err error
			if spec.Env, err = parseKV("env", env); err != nil {
				return err
			}
			spec.Args = args[1:]
			spec.TTY = tty
			spec.Stdout, spec.Stderr = a.out, a.errOut
			if interactive {
				spec.Stdin = a.in
			}
			drv, err := a.driver()
			if err != nil {
				return err
			}
			if fd, ok := terminal(a.in); ok && tty {
				spec.Size = termSize(fd)
				var stop func()
				spec.Resize, stop = watchResize(fd)
				defer stop()
				if interactive {
					old, err := term.MakeRaw(fd)
					if err != nil {
						return err
					}
					defer func() { _ = term.Restore(fd, old) }()
				}
			}
			res, err := drv.Exec(cmd.Context(), args[0], spec)
			if errors.Is(err, hypervisor.ErrCommandNotFound) {
				fmt.Fprintf(a.errOut, "dvctl: %v\n", err)
				return exitStatus(127)
			}
			if err != nil {
				return err
			}
			if a.g.output == "json" && !tty {
				// The command's output went to stdout; the result goes to
				// stderr, so both stay parseable.
				fmt.Fprintf(a.errOut, "{\"exit_code\":%d}\n", res.ExitCode)
			}
			if res.ExitCode != 0 {
				return exitStatus(res.ExitCode)
			}
			return nil
		},
	}
	f := c.Flags()
	f.BoolVarP(&tty, "tty", "t", false, "run the command on a terminal")
	f.BoolVarP(&interactive, "interactive", "i", false, "pass standard input to the command")
	f.StringArrayVarP(&env, "env", "e", nil, "KEY=VALUE added to the environment (repeatable)")
	f.StringVarP(&spec.User, "user", "u", "", "user (name, uid or uid:gid)")
	f.StringVarP(&spec.WorkDir, "workdir", "w", "", "working directory")
	return c
}

// consoleAttachCommand is `console attach ID`.
func (a *app) consoleAttachCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "attach ID",
		Short: "Attach to an instance's console (detach with Ctrl-])",
		Long: `Attach to the console of a running instance: the terminal of its main
process, as a VM's serial console. What the instance writes is shown, what
is typed goes to it; on a terminal, dvctl puts it in raw mode and follows its
size. Ctrl-] detaches and leaves the instance running. Without a terminal,
standard input is passed on until it ends, and dvctl detaches when the
instance's process ends or a second after input ends.`,
		Args:              exactArgs(1),
		ValidArgsFunction: a.completeInstances,
		RunE: func(cmd *cobra.Command, args []string) error {
			drv, err := a.driver()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			var opts hypervisor.ConsoleAttachOptions
			fd, isTTY := terminal(a.in)
			if isTTY {
				opts.Size = termSize(fd)
			}
			con, err := drv.AttachConsole(ctx, args[0], opts)
			if err != nil {
				return err
			}
			defer con.Close()
			if isTTY {
				old, err := term.MakeRaw(fd)
				if err != nil {
					return err
				}
				defer func() { _ = term.Restore(fd, old) }()
				fmt.Fprintf(a.errOut, "Connected to %s (detach with Ctrl-])\r\n", args[0])
				resize, stop := watchResize(fd)
				defer stop()
				go func() {
					for s := range resize {
						_ = con.Resize(context.WithoutCancel(ctx), s)
					}
				}()
			}
			outDone := make(chan error, 1)
			go func() {
				_, err := io.Copy(a.out, con)
				outDone <- err
			}()
			inDone := make(chan error, 1)
			go func() { inDone <- copyUntilDetach(con, a.in, isTTY) }()
			select {
			case err := <-outDone:
				return err // the instance's process ended
			case <-inDone:
				if !isTTY {
					// Input ended: let the instance answer what it got.
					select {
					case <-outDone:
					case <-time.After(time.Second):
					}
				}
				return nil
			case <-ctx.Done():
				return nil
			}
		},
	}
}

// copyUntilDetach copies in to w until in ends or, on a terminal, the
// detach key is typed.
func copyUntilDetach(w io.Writer, in io.Reader, tty bool) error {
	buf := make([]byte, 4096)
	for {
		n, err := in.Read(buf)
		if n > 0 {
			b := buf[:n]
			detach := false
			if i := bytes.IndexByte(b, DetachKey); tty && i >= 0 {
				b, detach = b[:i], true
			}
			if _, werr := w.Write(b); werr != nil {
				return werr
			}
			if detach {
				return nil
			}
		}
		if err != nil {
			return nil
		}
	}
}

func (a *app) metadataCommand() *cobra.Command {
	c := &cobra.Command{
		Use:   "metadata",
		Short: "Show or change instance metadata (on the config drive too)",
		Args:  noArgs,
		RunE: func(*cobra.Command, []string) error {
			return usageError{fmt.Errorf("metadata: name a subcommand (see dvctl metadata --help)")}
		},
	}
	show := func(id string, md map[string]string) error {
		if md == nil {
			md = map[string]string{}
		}
		return a.emit(md, func(w io.Writer) {
			row(w, "KEY", "VALUE")
			for _, k := range slices.Sorted(maps.Keys(md)) {
				row(w, k, md[k])
			}
		})
	}
	update := func(cmd *cobra.Command, id string, fn func(map[string]string)) error {
		drv, err := a.driver()
		if err != nil {
			return err
		}
		info, err := drv.Info(cmd.Context(), id)
		if err != nil {
			return err
		}
		md := maps.Clone(info.Metadata)
		if md == nil {
			md = map[string]string{}
		}
		fn(md)
		if err := drv.UpdateMetadata(cmd.Context(), id, md); err != nil {
			return err
		}
		return show(id, md)
	}
	var replace bool
	set := &cobra.Command{
		Use:               "set ID KEY=VALUE...",
		Short:             "Set metadata keys (--replace: replace all metadata)",
		Args:              minArgs(1),
		ValidArgsFunction: a.completeInstances,
		RunE: func(cmd *cobra.Command, args []string) error {
			kv, err := parseKV("metadata", args[1:])
			if err != nil {
				return err
			}
			return update(cmd, args[0], func(md map[string]string) {
				if replace {
					clear(md)
				}
				maps.Copy(md, kv)
			})
		},
	}
	set.Flags().BoolVar(&replace, "replace", false, "replace all metadata with the given keys")
	unset := &cobra.Command{
		Use:               "unset ID KEY...",
		Short:             "Remove metadata keys",
		Args:              minArgs(2),
		ValidArgsFunction: a.completeInstances,
		RunE: func(cmd *cobra.Command, args []string) error {
			return update(cmd, args[0], func(md map[string]string) {
				for _, k := range args[1:] {
					delete(md, k)
				}
			})
		},
	}
	get := &cobra.Command{
		Use:               "get ID",
		Short:             "Show an instance's metadata",
		Args:              exactArgs(1),
		ValidArgsFunction: a.completeInstances,
		RunE: func(cmd *cobra.Command, args []string) error {
			info, err := a.info(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return show(args[0], info.Metadata)
		},
	}
	c.AddCommand(set, unset, get)
	return c
}

func (a *app) osStatusCommand() *cobra.Command {
	var (
		wait, cloudInit bool
		timeout         time.Duration
	)
	c := &cobra.Command{
		Use:   "os-status ID",
		Short: "Show what the OS of an OS instance says about itself (--wait: until booted)",
		Long: `Show the init system's state, failed units, cloud-init's status and how the
last shutdown went, of an OS instance (one booting its image's init as PID
1). --wait waits until it has finished booting (with --cloud-init, until
cloud-init has finished too); a degraded system or a failed cloud-init is an
error. An application instance is exit code 8 (not supported).`,
		Args:              exactArgs(1),
		ValidArgsFunction: a.completeInstances,
		RunE: func(cmd *cobra.Command, args []string) error {
			drv, err := a.driver()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			var st hypervisor.OSStatus
			if wait {
				if timeout > 0 {
					var cancel context.CancelFunc
					ctx, cancel = context.WithTimeout(ctx, timeout)
					defer cancel()
				}
				st, err = drv.WaitBooted(ctx, args[0], hypervisor.WaitBootOptions{CloudInit: cloudInit})
			} else {
				st, err = drv.OSStatus(ctx, args[0])
			}
			if err != nil {
				return err
			}
			return a.emit(st, func(w io.Writer) {
				row(w, "System", st.System)
				if len(st.FailedUnits) > 0 {
					row(w, "Failed units", strings.Join(st.FailedUnits, " "))
				}
				if ci := st.CloudInit; ci.Status != "" {
					row(w, "Cloud-init", strings.TrimSpace(ci.Status+" "+ci.Datasource+" "+strings.Join(ci.Errors, "; ")))
				}
				if ls := st.LastShutdown; !ls.At.IsZero() {
					how := "orderly"
					if !ls.Orderly {
						how = "killed"
					}
					row(w, "Last shutdown", fmt.Sprintf("%s, %s in %s, exit %d", ls.At.Format(time.RFC3339), how, dur(ls.Duration), ls.ExitCode))
				}
			})
		},
	}
	c.Flags().BoolVar(&wait, "wait", false, "wait until the OS has finished booting")
	c.Flags().BoolVar(&cloudInit, "cloud-init", false, "with --wait, wait for cloud-init too")
	c.Flags().DurationVar(&timeout, "timeout", 0, "with --wait, give up after this long")
	return c
}
