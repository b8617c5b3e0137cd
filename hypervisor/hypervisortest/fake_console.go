package hypervisortest

import (
	"bytes"
	"context"
	"fmt"

	"github.com/dockervisor/dockervisor/hypervisor"
)

// ConsoleOutput returns the console data written with [Fake.WriteConsole],
// bounded by opts as the contract says: chunks written before opts.Since
// are dropped, then the last opts.TailLines lines are kept, then the last
// opts.MaxBytes bytes (DefaultConsoleMaxBytes when zero).
func (f *Fake) ConsoleOutput(ctx context.Context, id string, opts hypervisor.ConsoleOptions) ([]byte, error) {
	const op = "console-output"
	if opts.TailLines < 0 || opts.MaxBytes < 0 {
		return nil, hypervisor.WrapOp(op, id, fmt.Errorf("%w: negative console bounds", hypervisor.ErrInvalidArgument))
	}
	var all []byte
	err := f.with(ctx, op, id, func(fi *fakeInstance) error {
		for _, c := range fi.console {
			if !opts.Since.IsZero() && c.t.Before(opts.Since) {
				continue
			}
			all = append(all, c.data...)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return BoundConsole(all, opts.TailLines, opts.MaxBytes), nil
}

// BoundConsole applies the TailLines and MaxBytes bounds of
// [hypervisor.ConsoleOptions] to console output b: it keeps the last
// tailLines lines (all when 0; a final line without a newline counts), then
// the last maxBytes bytes ([hypervisor.DefaultConsoleMaxBytes] when 0). It
// returns a slice of b.
func BoundConsole(b []byte, tailLines, maxBytes int) []byte {
	if tailLines > 0 {
		end := len(b)
		if end > 0 && b[end-1] == '\n' {
			end--
		}
		i := end
		for range tailLines {
			j := bytes.LastIndexByte(b[:i], '\n')
			if j < 0 {
				i = -1
				break
			}
			i = j
		}
		b = b[i+1:]
	}
	if maxBytes == 0 {
		maxBytes = hypervisor.DefaultConsoleMaxBytes
	}
	if len(b) > maxBytes {
		b = b[len(b)-maxBytes:]
	}
	return b
}

// WriteConsole appends data to the console of a running instance, stamped
// with the current time, as the instance's process would. It fails with
// ErrNotFound or ErrInvalidState like any other operation.
func (f *Fake) WriteConsole(id string, data []byte) error {
	const op = "write-console"
	return f.with(context.Background(), op, id, func(fi *fakeInstance) error {
		if err := hypervisor.CheckState(op, id, fi.inst.State, hypervisor.StateRunning); err != nil {
			return err
		}
		fi.console = append(fi.console, consoleChunk{t: f.now(), data: bytes.Clone(data)})
		return nil
	})
}

// Crash makes the process of a running or paused instance exit by itself
// with exitCode, as if the guest failed: the instance becomes crashed (an
// EventCrashed), or shut down (an EventStopped) when exitCode is 0.
func (f *Fake) Crash(id string, exitCode int) error {
	const op = "crash"
	return f.with(context.Background(), op, id, func(fi *fakeInstance) error {
		if err := hypervisor.CheckState(op, id, fi.inst.State, stHasProcess...); err != nil {
			return err
		}
		f.agent.op = opCrash
		to := hypervisor.StateCrashed
		if exitCode == 0 {
			to = hypervisor.StateShutdown
		}
		f.stop(fi, to, exitCode)
		return nil
	})
}
