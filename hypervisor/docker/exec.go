package docker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/dockervisor/dockervisor/hypervisor"
)

// guestRoom is the Driver's room of guest access: exec, console, config
// drive, metadata and keys.
type guestRoom struct {
	*core
	life    instanceReader
	records recordWriter
}

// guestAPI is the part of the engine API that reaches into containers:
// exec, attach, resize and file copies.
type guestAPI interface {
	ExecCreate(ctx context.Context, containerID string, options client.ExecCreateOptions) (client.ExecCreateResult, error)
	ExecAttach(ctx context.Context, execID string, options client.ExecAttachOptions) (client.ExecAttachResult, error)
	ExecInspect(ctx context.Context, execID string, options client.ExecInspectOptions) (client.ExecInspectResult, error)
	ExecResize(ctx context.Context, execID string, options client.ExecResizeOptions) (client.ExecResizeResult, error)
	ContainerAttach(ctx context.Context, containerID string, options client.ContainerAttachOptions) (client.ContainerAttachResult, error)
	ContainerResize(ctx context.Context, containerID string, options client.ContainerResizeOptions) (client.ContainerResizeResult, error)
	CopyToContainer(ctx context.Context, containerID string, options client.CopyToContainerOptions) (client.CopyToContainerResult, error)
	CopyFromContainer(ctx context.Context, containerID string, options client.CopyFromContainerOptions) (client.CopyFromContainerResult, error)
}

var _ hypervisor.GuestAccess = (*Driver)(nil)

// Exec runs a command in the running instance and waits for it to end. The
// instance's lock is held only while the command is set up, so a long
// command does not hold up other operations on the instance; a PowerOff
// meanwhile ends the command.
//
// Ending ctx kills the command's process (SIGKILL) when the engine runs on
// this host (the driver finds the process by the PID the engine reports,
// checked to be in the instance's PID namespace); with a remote engine the
// stream is closed and the process may run on. Exec returns when the
// command ends, without waiting for a Read of spec.Stdin to return. A
// command that cannot start (a missing binary) is ErrCommandNotFound; the
// engine's message about it may have been written to Stdout.
func (d *guestRoom) Exec(ctx context.Context, id string, spec hypervisor.ExecSpec) (hypervisor.ExecResult, error) {
	res, err := d.exec(ctx, id, spec)
	return res, opErr("exec", id, err)
}

func validateExec(spec hypervisor.ExecSpec) error {
	if len(spec.Args) == 0 || spec.Args[0] == "" {
		return fmt.Errorf("%w: empty command", hypervisor.ErrInvalidArgument)
	}
	for k := range spec.Env {
		if k == "" || strings.ContainsAny(k, "=\x00") {
			return fmt.Errorf("%w: bad environment variable name %q", hypervisor.ErrInvalidArgument, k)
		}
	}
	if !spec.TTY && (spec.Size != hypervisor.TerminalSize{}) {
		return fmt.Errorf("%w: a terminal size needs TTY", hypervisor.ErrInvalidArgument)
	}
	return nil
}

func envList(env map[string]string) []string {
	out := make([]string, 0, len(env))
	for _, k := range slices.Sorted(maps.Keys(env)) {
		out = append(out, k+"="+env[k])
	}
	return out
}

// running returns instance id under its lock after checking op's row of
// the state table (valid only in running). The caller runs unlock.
func (d *guestRoom) running(ctx context.Context, op hypervisor.Operation, id string) (*target, func(), error) {
	api, unlock, err := d.lockInstance(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	t, err := d.life.current(ctx, api, id)
	if err == nil {
		_, err = op.Check(id, t.cur)
	}
	if err != nil {
		unlock()
		return nil, nil, err
	}
	return t, unlock, nil
}

func (d *guestRoom) exec(ctx context.Context, id string, spec hypervisor.ExecSpec) (hypervisor.ExecResult, error) {
	if err := hypervisor.ValidateID(id); err != nil {
		return hypervisor.ExecResult{}, err
	}
	if err := validateExec(spec); err != nil {
		return hypervisor.ExecResult{}, err
	}
	t, unlock, err := d.running(ctx, hypervisor.OpExec, id)
	if err != nil {
		return hypervisor.ExecResult{}, err
	}
	api, c := t.api, t.c
	size := client.ConsoleSize{Height: uint(spec.Size.Rows), Width: uint(spec.Size.Cols)}
	created, err := api.ExecCreate(ctx, c.ID, client.ExecCreateOptions{
		User:         spec.User,
		TTY:          spec.TTY,
		ConsoleSize:  size,
		AttachStdin:  spec.Stdin != nil,
		AttachStdout: true,
		AttachStderr: true,
		Env:          envList(spec.Env),
		WorkingDir:   spec.WorkDir,
		Cmd:          spec.Args,
	})
	if err != nil {
		unlock()
		return hypervisor.ExecResult{}, classify(err, hypervisor.ErrNotFound)
	}
	att, err := api.ExecAttach(ctx, created.ID, client.ExecAttachOptions{TTY: spec.TTY, ConsoleSize: size})
	unlock()
	if err != nil {
		return hypervisor.ExecResult{}, classify(err, hypervisor.ErrNotFound)
	}
	hr := att.HijackedResponse
	if spec.TTY && spec.Size != (hypervisor.TerminalSize{}) {
		// Engines before API 1.42 ignore the size given at create and
		// start; set it now, as the docker CLI does.
		if _, err := api.ExecResize(ctx, created.ID, client.ExecResizeOptions{Height: uint(spec.Size.Rows), Width: uint(spec.Size.Cols)}); err != nil {
			d.log.DebugContext(ctx, "exec: initial resize failed", "id", id, "err", err)
		}
	}
	var closeOnce sync.Once
	closeConn := func() { closeOnce.Do(hr.Close) }
	defer closeConn()

	if spec.Stdin != nil {
		go func() {
			_, _ = io.Copy(hr.Conn, spec.Stdin)
			if !spec.TTY {
				// On a terminal the engine would hang the terminal up
				// and the command's output would be lost: a terminal's
				// end of input is a ^D the caller types.
				_ = hr.CloseWrite()
			}
		}()
	}
	stop := make(chan struct{})
	defer close(stop)
	if spec.TTY && spec.Resize != nil {
		go d.forwardResizes(api, created.ID, spec.Resize, stop)
	}
	stdout, stderr := orDiscard(spec.Stdout), orDiscard(spec.Stderr)
	copied := make(chan error, 1)
	go func() {
		var err error
		if spec.TTY {
			_, err = io.Copy(stdout, hr.Reader)
		} else {
			_, err = stdcopy.StdCopy(stdout, stderr, hr.Reader)
		}
		copied <- err
	}()

	select {
	case err := <-copied:
		if err != nil && ctx.Err() == nil {
			return hypervisor.ExecResult{}, fmt.Errorf("exec output: %w", err)
		}
	case <-ctx.Done():
		kerr := d.killExec(context.WithoutCancel(ctx), api, c, created.ID)
		closeConn()
		if kerr != nil {
			d.log.WarnContext(ctx, "exec cancelled, but its process may still run in the instance", "op", "exec", "id", id, "err", kerr)
		}
		return hypervisor.ExecResult{}, ctx.Err()
	}
	return d.execResult(ctx, api, c, created.ID)
}

// execResult waits for the engine to record the command's end and returns
// its exit code.
func (d *guestRoom) execResult(ctx context.Context, api APIClient, c container.InspectResponse, execID string) (hypervisor.ExecResult, error) {
	wait := 5 * time.Millisecond
	for {
		ins, err := api.ExecInspect(ctx, execID, client.ExecInspectOptions{})
		if err != nil {
			return hypervisor.ExecResult{}, classify(err, hypervisor.ErrNotFound)
		}
		if !ins.Running {
			if ins.PID == 0 && ins.ExitCode != 0 {
				// The runtime could not start the process at all.
				return hypervisor.ExecResult{ExitCode: ins.ExitCode}, fmt.Errorf("%w: exit status %d", hypervisor.ErrCommandNotFound, ins.ExitCode)
			}
			return hypervisor.ExecResult{ExitCode: ins.ExitCode}, nil
		}
		// The output ended before the process did (it closed its output).
		select {
		case <-ctx.Done():
			if err := d.killExec(context.WithoutCancel(ctx), api, c, execID); err != nil {
				d.log.WarnContext(ctx, "exec cancelled, but its process may still run in the instance", "op", "exec", "exec", execID, "err", err)
			}
			return hypervisor.ExecResult{}, ctx.Err()
		case <-time.After(wait):
		}
		wait = min(wait*2, 200*time.Millisecond)
	}
}

func (d *guestRoom) forwardResizes(api APIClient, execID string, sizes <-chan hypervisor.TerminalSize, stop <-chan struct{}) {
	for {
		select {
		case <-stop:
			return
		case s, ok := <-sizes:
			if !ok {
				return
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			_, err := api.ExecResize(ctx, execID, client.ExecResizeOptions{Height: uint(s.Rows), Width: uint(s.Cols)})
			cancel()
			if err != nil {
				d.log.Debug("exec resize failed", "exec", execID, "err", err)
			}
		}
	}
}

// killExec kills the process of exec execID, if the engine is local and
// the process is in the container's PID namespace.
func (d *guestRoom) killExec(ctx context.Context, api APIClient, c container.InspectResponse, execID string) error {
	ins, err := api.ExecInspect(ctx, execID, client.ExecInspectOptions{})
	if err != nil {
		return err
	}
	if !ins.Running || ins.PID <= 0 {
		return nil
	}
	cur, err := api.ContainerInspect(ctx, c.ID, client.ContainerInspectOptions{})
	if err != nil {
		return err
	}
	if cur.Container.State == nil || cur.Container.State.Pid <= 0 {
		return nil
	}
	return killInNamespace(ins.PID, cur.Container.State.Pid)
}

func orDiscard(w io.Writer) io.Writer {
	if w == nil {
		return io.Discard
	}
	return w
}

var errRemoteProcess = errors.New("process is not visible on this host")
