package docker

import (
	"encoding/base64"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dockervisor/dockervisor/hypervisor"
	"github.com/dockervisor/dockervisor/image/osimage"
)

// TestBootReportProtocol: the backend and the image builder speak the
// same protocol.
func TestBootReportProtocol(t *testing.T) {
	assert.Equal(t, osimage.LabelBootReport, bootReportLabel)
	assert.Equal(t, osimage.BootReportConsole, bootReportConsole)
	assert.Equal(t, osimage.BootReportPrefix, bootReportPrefix)
	assert.Equal(t, osimage.LabelOS, hypervisor.OSImageLabel)
}

func reportLine(status string) string {
	return bootReportPrefix + base64.StdEncoding.EncodeToString([]byte(status)) + "\r\n"
}

func TestScanBootReport(t *testing.T) {
	const done = "running\n@@\n@@\ninstalled\n@@\n{\"v1\":{\"datasource\":\"DataSourceConfigDrive [net,ver=2]\"}}\n@@\n{\"v1\":{\"datasource\":\"DataSourceConfigDrive [net,ver=2]\",\"errors\":[]}}\n"
	const degraded = "degraded\n@@\ndv-broken.service loaded failed failed A unit that fails\n@@\n"
	for _, tc := range []struct {
		name    string
		console string
		found   bool
		want    hypervisor.OSStatus
	}{
		{name: "none", console: "Welcome to Debian\r\n[  OK  ] Reached target multi-user.target\r\n"},
		{
			name:    "done",
			console: "Welcome\r\n[   12.3] systemd[1]: Starting dockervisor-boot-report.service...\r\n" + reportLine(done) + "console login:",
			found:   true,
			want:    hypervisor.OSStatus{System: "running", CloudInit: hypervisor.CloudInitStatus{Status: "done", Datasource: "configdrive"}},
		},
		{
			name:    "degraded, after other output on its line",
			console: "half a status line\r" + reportLine(degraded),
			found:   true,
			want:    hypervisor.OSStatus{System: "degraded", FailedUnits: []string{"dv-broken.service"}},
		},
		{
			name:    "a broken report is skipped",
			console: bootReportPrefix + "not base64!\r\n" + reportLine("") + reportLine("running\n@@\n@@\n"),
			found:   true,
			want:    hypervisor.OSStatus{System: "running"},
		},
		{name: "unterminated", console: strings.TrimSuffix(reportLine(done), "\r\n")[:40]},
		{
			name:    "after an overlong line",
			console: strings.Repeat("x", maxBootReportLine+100) + "\r\n" + reportLine("running\n"),
			found:   true,
			want:    hypervisor.OSStatus{System: "running"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, found := scanBootReport(iotest.OneByteReader(strings.NewReader(tc.console)))
			if len(tc.console) > 4096 {
				st, found = scanBootReport(strings.NewReader(tc.console))
			}
			require.Equal(t, tc.found, found)
			assert.Equal(t, tc.want, st)
		})
	}
}

func TestRunSince(t *testing.T) {
	start := time.Date(2025, 1, 2, 3, 4, 5, 6, time.UTC)
	assert.Empty(t, runSince(start, time.Time{}), "a first run: the whole log")
	assert.Empty(t, runSince(start, start.Add(time.Second)), "a finish after the start is not the run before")
	assert.Equal(t, "1735787044.000000006", runSince(start, start.Add(-time.Second)))
}

func TestHasBootReport(t *testing.T) {
	c := container.InspectResponse{Config: &container.Config{Tty: true, Labels: map[string]string{bootReportLabel: bootReportConsole}}}
	assert.True(t, hasBootReport(c))
	c.Config.Tty = false
	assert.False(t, hasBootReport(c), "the report is read from a terminal's output")
	c.Config = &container.Config{Tty: true, Labels: map[string]string{bootReportLabel: ""}}
	assert.False(t, hasBootReport(c))
	assert.False(t, hasBootReport(container.InspectResponse{}))
}

// TestPollPause: the fallback asks every bootPoll while a question is
// quick, and never spends more than half of its wait asking.
func TestPollPause(t *testing.T) {
	assert.Equal(t, bootPoll, pollPause(0))
	assert.Equal(t, bootPoll, pollPause(bootPoll/2))
	assert.Equal(t, 800*time.Millisecond, pollPause(800*time.Millisecond))
}
