package docker

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/dockervisor/dockervisor/hypervisor"
)

// The boot report: how WaitBooted learns the end of a boot without asking
// the instance again and again.
//
// An image that carries the label bootReportLabel=bootReportConsole (as
// package osimage's images do) writes one line on its console once its
// init's startup has finished (systemd's StartupFinished, which comes
// after cloud-init's last stage, part of the boot): bootReportPrefix and
// the base64 of what osStatusScript prints at that moment. WaitBooted
// follows the instance's console log from the start of its current run
// (the engine's log stream: an event, no command in the instance) and
// reads the status from that line. It still asks the instance, with
// osStatusScript, every bootBackstop while it waits (an image whose
// report is gone or broken is reported late, not never), and every
// bootPoll for an image without the label, or when the console log
// cannot be read (a log driver the engine cannot read back).
const (
	// bootReportLabel is the image label that announces the report.
	bootReportLabel = "io.dockervisor.os.boot-report"
	// bootReportConsole is the label's value for the report on the
	// console.
	bootReportConsole = "console-v1"
	// bootReportPrefix starts the report's line.
	bootReportPrefix = "dockervisor-boot-report-v1 "
	// bootBackstop is how often WaitBooted asks an instance that should
	// report the end of its boot.
	bootBackstop = 5 * time.Second
	// maxBootReportLine bounds a console line that is read as a report.
	maxBootReportLine = 1 << 20
)

// hasBootReport reports whether the container's image announces the boot
// report (the engine merges image labels into the container's).
func hasBootReport(c container.InspectResponse) bool {
	return c.Config != nil && c.Config.Tty && c.Config.Labels[bootReportLabel] == bootReportConsole
}

// errNoConsoleLog is returned by awaitBootReport when the engine cannot
// stream the instance's console log.
var errNoConsoleLog = errors.New("the console log cannot be followed")

// awaitBootReport follows the console log of running container c from the
// start of its current run until the boot report, for at most wait. found
// is false when wait ended first or the log ended (the container
// stopped); err is ctx's error, or errNoConsoleLog.
func (d *osRoom) awaitBootReport(ctx context.Context, api APIClient, c container.InspectResponse, wait time.Duration) (st hypervisor.OSStatus, found bool, err error) {
	fctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	lo := client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true, Follow: true}
	if c.State != nil {
		lo.Since = runSince(parseTime(c.State.StartedAt), parseTime(c.State.FinishedAt))
	}
	rc, err := api.ContainerLogs(fctx, c.ID, lo)
	if err != nil {
		if ctx.Err() != nil {
			return st, false, ctx.Err()
		}
		if fctx.Err() != nil {
			return st, false, nil
		}
		return st, false, fmt.Errorf("%w: %w", errNoConsoleLog, err)
	}
	defer rc.Close()
	st, found = scanBootReport(rc)
	if !found && ctx.Err() != nil {
		return st, false, ctx.Err()
	}
	return st, found, nil
}

// runSince is the console log's lower bound for the run that started at
// started: the end of the run before it (a line logged after it is this
// run's), or nothing for a first run.
func runSince(started, lastFinished time.Time) string {
	if lastFinished.IsZero() || !lastFinished.Before(started) {
		return ""
	}
	return fmt.Sprintf("%d.%09d", lastFinished.Unix(), lastFinished.Nanosecond())
}

// scanBootReport reads a terminal's output until a boot report line and
// returns the status it carries. A line that starts like a report but does
// not decode is skipped.
func scanBootReport(r io.Reader) (hypervisor.OSStatus, bool) {
	br := bufio.NewReaderSize(r, 64<<10)
	var line []byte
	for {
		chunk, err := br.ReadSlice('\n')
		switch {
		case len(line)+len(chunk) > maxBootReportLine:
			line = line[:0]
			if errors.Is(err, bufio.ErrBufferFull) {
				// Skip the rest of an overlong line.
				for errors.Is(err, bufio.ErrBufferFull) {
					_, err = br.ReadSlice('\n')
				}
			}
		default:
			line = append(line, chunk...)
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if st, ok := parseBootReport(line); ok {
			return st, true
		}
		line = line[:0]
		if err != nil {
			return hypervisor.OSStatus{}, false
		}
	}
}

// parseBootReport reads one console line as a boot report.
func parseBootReport(line []byte) (hypervisor.OSStatus, bool) {
	// A terminal ends its lines with \r\n; the report may follow other
	// output on the same line only after a carriage return.
	line = bytes.TrimRight(line, "\r\n")
	if i := bytes.LastIndexByte(line, '\r'); i >= 0 {
		line = line[i+1:]
	}
	payload, ok := bytes.CutPrefix(line, []byte(bootReportPrefix))
	if !ok {
		return hypervisor.OSStatus{}, false
	}
	out, err := base64.StdEncoding.DecodeString(string(bytes.TrimSpace(payload)))
	if err != nil {
		return hypervisor.OSStatus{}, false
	}
	var st hypervisor.OSStatus
	parseOSStatus(string(out), &st)
	if st.System == "" {
		return hypervisor.OSStatus{}, false
	}
	return st, true
}
