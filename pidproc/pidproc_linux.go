package pidproc

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Process is a running daemon, held by a pidfd.
type Process struct {
	PID int
	fd  int
}

// Open returns the process whose PID is in pidFile if it runs and its
// command line has the argument arg. ErrNotRunning otherwise.
func Open(pidFile, arg string) (*Process, error) {
	b, err := os.ReadFile(pidFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: no PID file %s", ErrNotRunning, pidFile)
	}
	if err != nil {
		return nil, fmt.Errorf("pidproc: %w", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return nil, fmt.Errorf("%w: malformed PID file %s", ErrNotRunning, pidFile)
	}
	fd, err := unix.PidfdOpen(pid, 0)
	if errors.Is(err, unix.ESRCH) {
		return nil, fmt.Errorf("%w: process %d has exited", ErrNotRunning, pid)
	}
	if err != nil {
		return nil, fmt.Errorf("pidproc: pidfd of %d: %w", pid, err)
	}
	// Checked after the pidfd is open: the pidfd names this process even
	// if the PID is reused later.
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || !slices.Contains(strings.Split(string(cmdline), "\x00"), arg) {
		unix.Close(fd)
		return nil, fmt.Errorf("%w: process %d is not the one with %s", ErrNotRunning, pid, arg)
	}
	return &Process{PID: pid, fd: fd}, nil
}

// Close releases the pidfd.
func (p *Process) Close() error { return unix.Close(p.fd) }

// Signal sends sig; a process that has exited meanwhile is no error.
func (p *Process) Signal(sig unix.Signal) error {
	if err := unix.PidfdSendSignal(p.fd, sig, nil, 0); err != nil && !errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("pidproc: signal %d: %w", p.PID, err)
	}
	return nil
}

// Terminate sends SIGTERM and waits until the process exits; when ctx
// ends first it sends SIGKILL and returns ctx's error. It closes p.
func (p *Process) Terminate(ctx context.Context) error {
	defer p.Close()
	if err := p.Signal(unix.SIGTERM); err != nil {
		return err
	}
	for {
		fds := []unix.PollFd{{Fd: int32(p.fd), Events: unix.POLLIN}}
		n, err := unix.Poll(fds, 100)
		if err != nil && !errors.Is(err, unix.EINTR) {
			return fmt.Errorf("pidproc: wait for %d: %w", p.PID, err)
		}
		if n > 0 {
			return nil // a pidfd is readable once its process exited
		}
		if ctx.Err() != nil {
			_ = p.Signal(unix.SIGKILL)
			return fmt.Errorf("pidproc: %d did not exit: %w", p.PID, ctx.Err())
		}
	}
}
