package docker

import (
	"context"
	"fmt"
	"io"
	"sync"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/dockervisor/dockervisor/hypervisor"
)

// AttachConsole attaches to the terminal of the instance's main process:
// what it writes is read from the Console, what is written to the Console
// is its input. Close detaches and leaves the instance running. The
// engine's detach sequence (ctrl-p ctrl-q) also detaches: the Console then
// reads io.EOF.
//
// Instances get a terminal with an open input at create; an instance
// created by an older version of the driver, without one, returns
// ErrNotSupported.
func (d *guestRoom) AttachConsole(ctx context.Context, id string, opts hypervisor.ConsoleAttachOptions) (hypervisor.Console, error) {
	con, err := d.attachConsole(ctx, id, opts)
	if err != nil {
		return nil, opErr("attach-console", id, err)
	}
	return con, nil
}

func (d *guestRoom) attachConsole(ctx context.Context, id string, opts hypervisor.ConsoleAttachOptions) (*console, error) {
	if err := hypervisor.ValidateID(id); err != nil {
		return nil, err
	}
	t, unlock, err := d.running(ctx, hypervisor.OpAttachConsole, id)
	if err != nil {
		return nil, err
	}
	api, c := t.api, t.c
	defer unlock()
	if c.Config == nil || !c.Config.Tty || !c.Config.OpenStdin {
		return nil, fmt.Errorf("%w: instance %s was created without a console terminal", hypervisor.ErrNotSupported, id)
	}
	res, err := api.ContainerAttach(ctx, c.ID, client.ContainerAttachOptions{Stream: true, Stdin: true, Stdout: true, Stderr: true})
	if err != nil {
		return nil, classify(err, hypervisor.ErrNotFound)
	}
	con := &console{api: api, cid: c.ID, hr: res.HijackedResponse}
	if opts.Size != (hypervisor.TerminalSize{}) {
		if err := con.Resize(ctx, opts.Size); err != nil {
			con.Close()
			return nil, err
		}
	}
	return con, nil
}

// console is an attached container terminal. Its output is the raw
// terminal stream: a container with a terminal is not multiplexed.
type console struct {
	api       APIClient
	cid       string
	hr        client.HijackedResponse
	closeOnce sync.Once
}

var _ hypervisor.Console = (*console)(nil)

func (c *console) Read(p []byte) (int, error) { return c.hr.Reader.Read(p) }

func (c *console) Write(p []byte) (int, error) { return c.hr.Conn.Write(p) }

// Close detaches. The container's input stays open (it is not a
// stdin-once container), so the instance does not see an end of input.
func (c *console) Close() error {
	c.closeOnce.Do(c.hr.Close)
	return nil
}

func (c *console) Resize(ctx context.Context, size hypervisor.TerminalSize) error {
	if size.Rows == 0 || size.Cols == 0 {
		return fmt.Errorf("%w: terminal size %dx%d", hypervisor.ErrInvalidArgument, size.Cols, size.Rows)
	}
	_, err := c.api.ContainerResize(ctx, c.cid, client.ContainerResizeOptions{Height: uint(size.Rows), Width: uint(size.Cols)})
	return classify(err, hypervisor.ErrNotFound)
}

// consoleConfig sets what a container needs for AttachConsole: a terminal
// and an input that stays open with nobody attached. Its log is then the
// terminal's output, not multiplexed, with "\r\n" line ends (see
// crlfWriter).
func consoleConfig(cfg *container.Config) {
	cfg.Tty = true
	cfg.OpenStdin = true
	cfg.StdinOnce = false
}

// crlfWriter turns the terminal's "\r\n" line ends into "\n" on the way to
// w, so that a console log reads the same with or without a terminal. A
// "\r" not followed by "\n" is kept.
type crlfWriter struct {
	w       io.Writer
	pending bool // a "\r" ended the last write
}

func (c *crlfWriter) Write(p []byte) (int, error) {
	out := make([]byte, 0, len(p)+1)
	for i, b := range p {
		if c.pending {
			c.pending = false
			if b != '\n' {
				out = append(out, '\r')
			}
		}
		if b == '\r' {
			if i == len(p)-1 {
				c.pending = true
				continue
			}
			if p[i+1] == '\n' {
				continue
			}
		}
		out = append(out, b)
	}
	if _, err := c.w.Write(out); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Flush writes a held "\r".
func (c *crlfWriter) Flush() error {
	if !c.pending {
		return nil
	}
	c.pending = false
	_, err := c.w.Write([]byte{'\r'})
	return err
}
