package osimage

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/moby/moby/client"

	"github.com/dockervisor/dockervisor/errclass"
)

// Defaults of [Options].
const (
	DefaultSuite      = "bookworm"
	DefaultMirror     = "http://deb.debian.org/debian"
	DefaultRepository = "dockervisor/debian-os"
	DefaultCacheDir   = "/var/cache/dockervisor"
)

// Labels the builder puts on its images.
const (
	// LabelHash holds the hash of the build's inputs, which is also the
	// image's tag.
	LabelHash = "io.dockervisor.osimage.hash"
	// LabelOS marks the image as one that boots an OS; its value names the
	// init system. It is the Docker backend's OS image label.
	LabelOS = "io.dockervisor.os"
	// LabelBootReport says how the image reports the end of its boot;
	// BootReportConsole is the only value (see the package doc). The
	// Docker backend's WaitBooted waits for the report on the console of
	// an image that carries it, and asks the instance otherwise.
	LabelBootReport = "io.dockervisor.os.boot-report"
	// BootReportConsole is LabelBootReport's value for the report line
	// on the console, whose first word is BootReportPrefix.
	BootReportConsole = "console-v1"
	// BootReportPrefix starts the boot report's line on the console; the
	// rest of the line is the base64 of the report (see the package doc).
	BootReportPrefix = "dockervisor-boot-report-v1 "
)

// builderVersion is part of every input hash: a change to what the builder
// puts into an image bumps it, so no stale cached image is reused.
const builderVersion = "3"

// basePackages go into debootstrap's --include; extraPackages are
// installed afterwards in the chroot (cloud-init fails to configure when
// debootstrap installs it).
var (
	basePackages  = []string{"systemd", "systemd-sysv", "iproute2", "iputils-ping"}
	extraPackages = []string{"cloud-init", "openssh-server"}
)

// ErrInvalidOptions is wrapped by Build's errors about its options. It is
// an [errclass.ErrInvalidArgument].
var ErrInvalidOptions = errclass.New("osimage: invalid options", errclass.ErrInvalidArgument)

// ErrBuild is wrapped by the errors of a failed build step (debootstrap,
// the package installation, the import); the message ends with the tail
// of the step's output. It is an [errclass.ErrUnavailable]: a mirror, the
// engine or a tool failed.
var ErrBuild = errclass.New("osimage: build failed", errclass.ErrUnavailable)

// Engine is what Build needs of a Docker engine: the moby client's image
// calls.
type Engine interface {
	ImageInspect(ctx context.Context, image string, opts ...client.ImageInspectOption) (client.ImageInspectResult, error)
	ImageImport(ctx context.Context, source client.ImageImportSource, ref string, options client.ImageImportOptions) (client.ImageImportResult, error)
}

// Options shape an image. The zero value builds the default image:
// Debian bookworm from Debian's mirror with systemd, cloud-init and
// openssh-server, as DefaultRepository:<hash>.
type Options struct {
	// Suite is the Debian release; empty means DefaultSuite.
	Suite string
	// Mirror is the Debian mirror; empty means DefaultMirror.
	Mirror string
	// Packages are installed in addition to the builder's own (systemd,
	// systemd-sysv, iproute2, iputils-ping, cloud-init, openssh-server).
	Packages []string
	// Repository is the image's repository; its tag is the input hash.
	// Empty means DefaultRepository.
	Repository string
	// CacheDir holds debootstrap's package cache and the build lock;
	// empty means DefaultCacheDir. It is not part of the hash.
	CacheDir string
	// WorkDir is where the root file system is assembled (and removed
	// afterwards); empty means the system's temporary directory. It is
	// not part of the hash.
	WorkDir string
	// Log, if not nil, receives the output of debootstrap and apt-get.
	Log io.Writer
}

// Result describes a built (or found) image.
type Result struct {
	// Ref is the image's reference, Repository:Hash.
	Ref string
	// ImageID is the engine's image ID.
	ImageID string
	// Hash is the hash of the build's inputs.
	Hash string
	// Cached reports that the image was on the engine already.
	Cached bool
	// Duration is how long Build took.
	Duration time.Duration
}

var (
	packageName = regexp.MustCompile(`^[a-z0-9][a-z0-9+.-]+$`)
	suiteName   = regexp.MustCompile(`^[a-z][a-z0-9-]*$`)
	repoName    = regexp.MustCompile(`^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$`)
)

// normalized fills the defaults and checks the options.
func (o Options) normalized() (Options, error) {
	if o.Suite == "" {
		o.Suite = DefaultSuite
	}
	if o.Mirror == "" {
		o.Mirror = DefaultMirror
	}
	if o.Repository == "" {
		o.Repository = DefaultRepository
	}
	if o.CacheDir == "" {
		o.CacheDir = DefaultCacheDir
	}
	if !suiteName.MatchString(o.Suite) {
		return o, fmt.Errorf("%w: suite %q", ErrInvalidOptions, o.Suite)
	}
	if !strings.HasPrefix(o.Mirror, "http://") && !strings.HasPrefix(o.Mirror, "https://") && !strings.HasPrefix(o.Mirror, "file:///") {
		return o, fmt.Errorf("%w: mirror %q is not an http(s) or file URL", ErrInvalidOptions, o.Mirror)
	}
	if !repoName.MatchString(o.Repository) {
		return o, fmt.Errorf("%w: repository %q", ErrInvalidOptions, o.Repository)
	}
	for _, p := range o.Packages {
		if !packageName.MatchString(p) {
			return o, fmt.Errorf("%w: package name %q", ErrInvalidOptions, p)
		}
	}
	o.Packages = slices.Sorted(slices.Values(o.Packages))
	o.Packages = slices.Compact(o.Packages)
	return o, nil
}

// Hash returns the hash of the inputs that shape the image: the tag Build
// gives it. Options that Build rejects return an error wrapping
// ErrInvalidOptions.
func (o Options) Hash() (string, error) {
	n, err := o.normalized()
	if err != nil {
		return "", err
	}
	return n.hash(), nil
}

func (o Options) hash() string {
	in := struct {
		Version  string   `json:"v"`
		Suite    string   `json:"suite"`
		Mirror   string   `json:"mirror"`
		Base     []string `json:"base"`
		Extra    []string `json:"extra"`
		Packages []string `json:"packages"`
		Files    []file   `json:"files"`
		Links    []link   `json:"links"`
		Report   string   `json:"report"`
	}{builderVersion, o.Suite, o.Mirror, basePackages, extraPackages, o.Packages, configFiles, configLinks, BootReportConsole}
	b, _ := json.Marshal(in)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])[:20]
}

// Ref returns the reference Build gives the image made from o.
func (o Options) Ref() (string, error) {
	n, err := o.normalized()
	if err != nil {
		return "", err
	}
	return n.Repository + ":" + n.hash(), nil
}

// file is one configuration file the builder writes into the image:
// mode 0644, or Mode when set.
type file struct {
	Path string      `json:"path"`
	Data string      `json:"data"`
	Mode os.FileMode `json:"mode,omitempty"`
}

// link is a symbolic link the builder makes in the image (a unit
// enabled, as systemctl enable would).
type link struct {
	Path   string `json:"path"`
	Target string `json:"target"`
}

// configFiles make the image fit a container; see the package doc.
var configFiles = []file{
	{Path: "/etc/cloud/cloud.cfg.d/90_dockervisor.cfg", Data: `# Written by dockervisor's image builder.
# The Docker backend mounts the config drive at /var/lib/cloud/seed/config_drive;
# an instance without one reads Nova's metadata service (the backend puts
# product_name=OpenStack Nova in its environment, where cloud-init looks).
datasource_list: [ ConfigDrive, OpenStack, None ]
# The engine sets the host name at create; a container cannot change it.
preserve_hostname: true
# A minbase system has no locales package.
locale: C.UTF-8
# Quick host keys on first boot.
ssh_genkeytypes: [ ed25519, ecdsa ]
# The modules of Debian's cloud.cfg less those that can do nothing in a
# container: no block devices to partition, grow or mount (growpart,
# resizefs, disk_setup, mounts), a host name the engine sets
# (set_hostname, update_hostname), no boot loader (grub-dpkg), a clock the
# host keeps (ntp), no udev for hotplug (install-hotplug), and tools or
# services the image does not have (snap, ssh-import-id, byobu, fan,
# landscape, lxd, mcollective, reset_rmc, refresh_rmc_and_interface,
# rightscale_userdata).
cloud_init_modules:
 - migrator
 - seed_random
 - bootcmd
 - write-files
 - update_etc_hosts
 - ca-certs
 - rsyslog
 - users-groups
 - ssh
cloud_config_modules:
 - keyboard
 - locale
 - set-passwords
 - apt-pipelining
 - apt-configure
 - timezone
 - disable-ec2-metadata
 - runcmd
cloud_final_modules:
 - package-update-upgrade-install
 - write-files-deferred
 - puppet
 - chef
 - salt-minion
 - scripts-vendor
 - scripts-per-once
 - scripts-per-boot
 - scripts-per-instance
 - scripts-user
 - ssh-authkey-fingerprints
 - keys-to-console
 - phone-home
 - final-message
 - power-state-change
`},
	{Path: "/etc/systemd/journald.conf.d/90-dockervisor-console.conf", Data: `# Written by dockervisor's image builder: the console shows the journal
# (services' output, such as the user-data's, and their errors) next to
# systemd's status lines, as a VM's serial console does.
[Journal]
ForwardToConsole=yes
MaxLevelConsole=info
TTYPath=/dev/console
`},
	{Path: "/etc/systemd/system/cloud-init-local.service.d/90-dockervisor-vifs.conf", Data: `# Written by dockervisor's image builder: the Docker backend attaches the
# instance's VIFs just after it started it; cloud-init renders the network
# configuration for them, so it waits until they are there.
[Service]
ExecStartPre=/usr/local/lib/dockervisor/wait-vifs
`},
	{Path: "/usr/local/lib/dockervisor/wait-vifs", Mode: 0o755, Data: `#!/bin/sh
# Written by dockervisor's image builder: wait (up to 30 s) until the
# devices the Docker backend names in PID 1's DOCKERVISOR_VIFS exist.
vifs=$(tr '\0' '\n' < /proc/1/environ | sed -n 's/^DOCKERVISOR_VIFS=//p' | tr ',' ' ')
i=0
while [ $i -lt 300 ]; do
	missing=
	for v in $vifs; do
		[ -e "/sys/class/net/$v" ] || missing="$missing $v"
	done
	[ -z "$missing" ] && exit 0
	sleep 0.1
	i=$((i + 1))
done
echo "dockervisor: VIFs missing after 30 s:$missing" >&2
exit 0
`},
	{Path: "/etc/systemd/system/dockervisor-boot-report.service", Data: `# Written by dockervisor's image builder: reports the end of the boot on the
# console (see boot-report).
[Unit]
Description=Report the end of the boot on the console

[Service]
Type=exec
ExecStart=/usr/local/lib/dockervisor/boot-report
# The script dies at its SIGTERM: a stop that lasts longer is stuck.
TimeoutStopSec=5s

[Install]
WantedBy=multi-user.target
`},
	{Path: "/usr/local/lib/dockervisor/boot-report", Mode: 0o755, Data: bootReportScript},
}

// configLinks enable systemd-networkd, which applies the network
// configuration cloud-init renders (DHCP, SLAAC, static), without
// systemd-networkd-wait-online (which would hold the boot of an instance
// whose links it does not manage).
var configLinks = []link{
	{Path: "/etc/systemd/system/multi-user.target.wants/systemd-networkd.service", Target: "/lib/systemd/system/systemd-networkd.service"},
	{Path: "/etc/systemd/system/sockets.target.wants/systemd-networkd.socket", Target: "/lib/systemd/system/systemd-networkd.socket"},
	{Path: "/etc/systemd/system/multi-user.target.wants/dockervisor-boot-report.service", Target: "/etc/systemd/system/dockervisor-boot-report.service"},
}

// bootReportScript waits until systemd's startup has finished (systemctl
// is-system-running --wait: an event on systemd's bus, no polling; asked
// again every 30 s, so that a missed event cannot hold the report) and
// then writes the boot report on the console in one write: a line of
// BootReportPrefix and the base64 of the system's state, its failed
// units and cloud-init's status files, each part after a line "@@" (the
// output of the Docker backend's status command). cloud-init's last
// stage is part of the boot, so its result is there. The way from the
// end of the startup to the console is short: a system that is running
// has no failed unit (systemd calls it degraded when one has failed), so
// only another state asks systemd which, and the shell writes the line
// itself. The line starts with a newline of its own (a getty's login
// prompt, which ends without one, may be on the console first) and a
// failed write (the console hung up by the getty's start) is tried
// again. A getty that starts on the console after the write flushes the
// terminal's output queue, and with it the report if the engine has not
// read it yet (seen under load): unless a getty was at its login prompt
// already, the line is written again as soon as one is (waiting for input
// in the kernel, as its /proc/<pid>/wchan shows; a second after it appears
// if that cannot be read). The driver reads the first line that comes.
//
// From the report on, the script starts no process: it waits by reading
// a FIFO that nobody writes to and looks for the getty in /proc with the
// shell's own commands. On a cgroup v1 host a container's systemd learns
// of no empty cgroup; it follows the processes it found when it stopped
// a service, so a process started at that moment (an instance powered
// off just after its boot, while the script looked for the getty every
// half second) could outlive its notice and hold the instance's orderly
// shutdown until the stop timed out. It always exits 0: a failed report
// must not fail the boot it reports.
const bootReportScript = `#!/bin/bash
# Written by dockervisor's image builder: once the boot has finished, one
# line on the console tells the Docker backend how it went.
mkdir -p /run/dockervisor
[ -p /run/dockervisor/pause ] || mkfifo /run/dockervisor/pause
while :; do
	state=$(timeout 30 systemctl is-system-running --wait 2>/dev/null)
	case "$state" in
	initializing|starting|"") sleep 1 ;;
	*) break ;;
	esac
done
# A running system has no failed unit: only another state asks which.
failed=
[ "$state" = running ] || failed=$(systemctl list-units --state=failed --plain --no-legend --no-pager 2>/dev/null)
{
	echo "$state"
	echo @@
	[ -z "$failed" ] || echo "$failed"
	echo @@
	if command -v cloud-init >/dev/null 2>&1; then
		if [ -e /run/cloud-init/disabled ]; then echo disabled; else echo installed; fi
		echo @@; cat /run/cloud-init/status.json 2>/dev/null
		echo @@; cat /run/cloud-init/result.json 2>/dev/null
	fi
} > /run/dockervisor/boot-report
line=$'\n'"` + BootReportPrefix + `$(base64 -w0 < /run/dockervisor/boot-report)"
# No process is started from here on (see the image builder).
pause() { read -r -t "$1" _ <> /run/dockervisor/pause || :; }
getty=
getty_runs() {
	local f c
	for f in /proc/[0-9]*/comm; do
		{ read -r c < "$f"; } 2>/dev/null && [ "$c" = agetty ] && getty=${f%/comm} && return 0
	done
	return 1
}
# A getty at its login prompt waits for input in the kernel (agetty in
# pselect6): its start, and the flush that comes with it, are over.
getty_waits() {
	local w
	getty_runs || return 1
	{ read -r w < "$getty/wchan"; } 2>/dev/null || return 1
	case $w in poll_schedule_timeout*|do_select|core_sys_select|wait_woken|n_tty_read) return 0 ;; esac
	return 1
}
waited=false
getty_waits && waited=true
report() {
	local try
	for try in 1 2 3 4 5; do
		{ printf '%s\n' "$line" > /dev/console; } 2>/dev/null && return
		pause 1
	done
}
report
printf '%s\n' "$line" > /run/dockervisor/boot-report.line
# A getty that starts on the console after that write flushes what the
# engine has not read of it yet: unless one was at its prompt already,
# write the line again as soon as one is (after a second if its wait
# cannot be read).
if ! $waited; then
	for try in {1..200}; do
		if getty_runs; then
			for t in {1..50}; do
				getty_waits && break
				pause 0.02
			done
			report
			break
		fi
		pause 0.05
	done
fi
exit 0
`
