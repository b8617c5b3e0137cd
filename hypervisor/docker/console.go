package docker

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strconv"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/dockervisor/dockervisor/hypervisor"
)

// ConsoleOutput returns the instance's console log: stdout and stderr,
// demultiplexed into one stream in the order the engine logged them (each
// stream in write order), bounded by opts (the last
// TailLines lines, at most the last MaxBytes bytes, written since Since).
func (d *guestRoom) ConsoleOutput(ctx context.Context, id string, opts hypervisor.ConsoleOptions) ([]byte, error) {
	b, err := d.consoleOutput(ctx, id, opts)
	return b, opErr("console-output", id, err)
}

func (d *guestRoom) consoleOutput(ctx context.Context, id string, opts hypervisor.ConsoleOptions) ([]byte, error) {
	if opts.TailLines < 0 || opts.MaxBytes < 0 {
		return nil, fmt.Errorf("%w: negative console bounds", hypervisor.ErrInvalidArgument)
	}
	api, unlock, err := d.lockInstance(ctx, id)
	if err != nil {
		return nil, err
	}
	defer unlock()
	c, err := d.life.inspect(ctx, api, id)
	if err != nil {
		return nil, err
	}
	lo := client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true}
	if opts.TailLines > 0 {
		lo.Tail = strconv.Itoa(opts.TailLines)
	}
	if !opts.Since.IsZero() {
		lo.Since = fmt.Sprintf("%d.%09d", opts.Since.Unix(), opts.Since.Nanosecond())
	}
	max := opts.MaxBytes
	if max == 0 {
		max = hypervisor.DefaultConsoleMaxBytes
	}
	return d.readConsole(ctx, api, c, lo, max)
}

// readConsole reads container c's console log as lo selects, keeping at
// most the last max bytes.
func (d *guestRoom) readConsole(ctx context.Context, api APIClient, c container.InspectResponse, lo client.ContainerLogsOptions, max int) ([]byte, error) {
	rc, err := api.ContainerLogs(ctx, c.ID, lo)
	if err != nil {
		return nil, classify(err, hypervisor.ErrNotFound)
	}
	defer rc.Close()
	tb := &tailBuffer{max: max}
	if c.Config != nil && c.Config.Tty {
		cw := &crlfWriter{w: tb}
		if _, err = io.Copy(cw, rc); err == nil {
			err = cw.Flush()
		}
	} else {
		_, err = stdcopy.StdCopy(tb, tb, rc)
	}
	if err != nil {
		return nil, fmt.Errorf("read console log: %w", err)
	}
	return tb.Bytes(), nil
}

// tailBuffer keeps the last max bytes written to it, in bounded memory.
type tailBuffer struct {
	max int
	buf []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	n := len(p)
	if len(p) >= t.max {
		t.buf = append(t.buf[:0], p[len(p)-t.max:]...)
		return n, nil
	}
	if over := len(t.buf) + len(p) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	t.buf = append(t.buf, p...)
	return n, nil
}

func (t *tailBuffer) Bytes() []byte { return bytes.Clone(t.buf) }
