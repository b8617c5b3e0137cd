package main

import (
	"context"
	"io"
	"os"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/dockervisor/dockervisor/image"
)

// isTerminal reports whether w is a terminal. Progress bars are drawn only
// there, so scripts and logs never see them.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// progress wraps r in a progress bar on the error stream when it is a
// terminal; size < 0 draws a spinner. The returned finish removes the bar.
func (a *app) progress(r io.Reader, size int64, what string) (io.Reader, func()) {
	if !isTerminal(a.errOut) || a.g.output == "json" {
		return r, func() {}
	}
	bar := progressbar.NewOptions64(size,
		progressbar.OptionSetWriter(a.errOut),
		progressbar.OptionSetDescription(what),
		progressbar.OptionShowBytes(true),
		progressbar.OptionShowTotalBytes(true),
		progressbar.OptionUseIECUnits(true),
		progressbar.OptionSetWidth(30),
		progressbar.OptionThrottle(100_000_000),
		progressbar.OptionClearOnFinish(),
		progressbar.OptionSpinnerType(14),
	)
	pr := progressbar.NewReader(r, bar)
	return &pr, func() { _ = bar.Finish() }
}

// progressReader is the image store the driver fetches from: its Open
// draws a progress bar of the fetch into the engine at spawn.
type progressReader struct {
	image.Reader
	a *app
}

func (p progressReader) Open(ctx context.Context, id string) (io.ReadCloser, error) {
	rc, err := p.Reader.Open(ctx, id)
	if err != nil || !isTerminal(p.a.errOut) {
		return rc, err
	}
	size := int64(-1)
	if m, serr := p.Reader.Stat(ctx, id); serr == nil {
		size = m.Size
	}
	r, finish := p.a.progress(rc, size, "fetch "+id)
	return readCloser{Reader: r, close: func() error { finish(); return rc.Close() }}, nil
}

type readCloser struct {
	io.Reader
	close func() error
}

func (r readCloser) Close() error { return r.close() }
