package docker

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/client"
	"github.com/moby/moby/client/pkg/versions"

	"github.com/dockervisor/dockervisor/hypervisor"
)

// osRoom is the Driver's room of OS instances: boot mode, cgroup gate, boot
// report and status.
type osRoom struct {
	*core
	life    instanceReader
	records recordWriter
	guest   guestExecer
	hosts   engineLocality
}

// OS instances are a small variation of the one spawn and stop path, not
// a second backend: create gives the container what an init system needs
// (osConfig), checks that the init exists (checkInit), and the stop path
// records how the OS shut down (noteShutdown). Every transition, limit and
// VIF rule holds for both kinds because both go through the same code.
//
// What systemd needs in an unprivileged container:
//   - the init as PID 1 (the image's /sbin/init, or the spec's command);
//   - tmpfs on /run and /run/lock;
//   - the cgroup file system as systemd expects it, writable where
//     systemd creates its units' cgroups and with the instance's limits
//     out of its reach (cgroupMode says how, per engine host):
//   - on a cgroup v2 host, a private cgroup namespace, where the engine
//     mounts the container's own cgroup2 tree. The host's cgroup2 file
//     system is mounted with nsdelegate (systemd does so), which makes
//     the namespace's root a delegation boundary: the instance can create
//     cgroups below it, move its processes between them and set limits
//     there, but cannot write its own cgroup's limits (memory.max,
//     cpu.max…) nor see any cgroup above it. The mount itself must be
//     writable: an engine that has writable cgroups (Docker 28, API
//     1.48) is asked for it; an older local engine mounts it read-only
//     and systemd cannot boot (it exits at once, unable to create
//     init.scope), so the driver makes it writable itself: the
//     container's entrypoint is a gate, a shell that waits for a flag
//     file in /run (a tmpfs, fresh at every start) and then executes the
//     init in its place as PID 1; a post-start step enters the
//     instance's mount namespace, remounts that one mount writable with
//     a bind remount (which changes the mount, never the cgroup2
//     superblock it shares with the host: a plain remount would drop
//     nsdelegate for every container of the host and let them lift their
//     own limits) and creates the flag. Every start runs the step, since
//     every start has a new mount namespace. A remote engine without
//     writable cgroups, a host without nsdelegate and an image without
//     /bin/sh for the gate are refused (ErrNotSupported);
//   - on a cgroup v1 host, the engine's own read-only mounts of the
//     container's cgroups for every controller, plus the host's
//     name=systemd hierarchy (/sys/fs/cgroup/systemd, which has no
//     controller and sets no limit) bound writable, where systemd creates
//     its units' cgroups. The usual recipe, binding the host's whole
//     /sys/fs/cgroup read-only, is not used: the engine (20.10) makes only
//     the top of such a bind read-only, so the controller hierarchies
//     under it stay writable and a process in the instance can move
//     itself to the host's root memory cgroup and escape its limits.
//     Here the controllers stay read-only (a test proves the escape
//     fails). What the instance can do in the name=systemd hierarchy is
//     create and remove cgroups there and move its own processes: no
//     limit depends on it;
//   - container=docker in its environment (systemd's virtualization
//     detection), and SIGRTMIN+3, systemd's halt request, as the stop
//     signal, so that the engine's stop is an orderly shutdown;
//   - a terminal as its console (the guest-access console), where systemd
//     prints its boot and shutdown messages as on a VM's serial console.
//
// What the OS's network configuration needs, as a VM's guest has it:
//   - CAP_NET_ADMIN, so that the OS configures its own interfaces (a DHCP
//     client takes its lease, systemd-networkd applies what cloud-init
//     rendered from network_data.json). It acts on the instance's own
//     network namespace only, which has nothing but its VIFs; the host
//     side (anti-spoofing of the security groups) is out of its reach;
//   - product_name=OpenStack Nova in its environment, where cloud-init
//     (and its ds-identify) recognise an OpenStack instance (the variable
//     nova-lxd set), so that an instance without a config drive looks for
//     the metadata service;
//   - DOCKERVISOR_VIFS, the guest devices of its VIFs at create (eth0,
//     eth1…), so that the image can wait for them before cloud-init
//     renders the network configuration (see package osimage): the VIFs
//     are attached after the start.
//
// No other privilege and no host namespace is added.

const (
	// defaultInit is the init an OS instance boots when the spec has no
	// command.
	defaultInit = "/sbin/init"
	// haltSignal is systemd's request for an orderly halt.
	haltSignal = "SIGRTMIN+3"
	// systemdHierarchy is where a cgroup v1 host mounts systemd's
	// controller-less name=systemd hierarchy.
	systemdHierarchy = "/sys/fs/cgroup/systemd"
	// killedExitCode is the exit status of a process ended by SIGKILL.
	killedExitCode = 128 + 9
)

// osAPI is what OS instances need of the engine beyond the rest.
type osAPI interface {
	ContainerStatPath(ctx context.Context, containerID string, options client.ContainerStatPathOptions) (client.ContainerStatPathResult, error)
}

var _ hypervisor.OSInspector = (*Driver)(nil)

// resolveBoot decides whether a spawn makes an OS instance: the spec's
// Boot, or with BootAuto the image's hypervisor.OSImageLabel. For an OS
// instance it also returns the image's ID (see executableCache). inspected
// is the engine's inspection of engineImage if the spawn has one (see
// ensureImageInspected); otherwise resolveBoot asks for it.
func (d *osRoom) resolveBoot(ctx context.Context, api APIClient, spec hypervisor.InstanceSpec, engineImage string, inspected *client.ImageInspectResult) (os bool, imageID string, err error) {
	if spec.Boot == hypervisor.BootApp {
		return false, "", nil
	}
	var img client.ImageInspectResult
	if inspected != nil {
		img = *inspected
	} else {
		img, err = api.ImageInspect(ctx, engineImage)
	}
	if spec.Boot == hypervisor.BootOS {
		// The ID only spares the init check a question: without it, the
		// check asks the engine (the image was found by ensureImage).
		return true, img.ID, nil
	}
	if err != nil {
		return false, "", classify(err, hypervisor.ErrImageNotFound)
	}
	if img.Config == nil {
		return false, "", nil
	}
	switch v := img.Config.Labels[hypervisor.OSImageLabel]; v {
	case "":
		return false, "", nil
	case hypervisor.InitSystemd:
		return true, img.ID, nil
	default:
		return false, "", fmt.Errorf("%w: image %s: init system %q (label %s): only %q is supported",
			hypervisor.ErrNotSupported, spec.Image, v, hypervisor.OSImageLabel, hypervisor.InitSystemd)
	}
}

// rebuildBoot decides whether a rebuilt instance is an OS instance: an OS
// instance stays one; an application instance becomes one when the new
// image carries the OS label. The image's ID is returned as by
// resolveBoot.
func (d *osRoom) rebuildBoot(ctx context.Context, api APIClient, old storedSpec, spec hypervisor.InstanceSpec, engineImage string, inspected *client.ImageInspectResult) (bool, string, error) {
	if old.Boot == string(hypervisor.BootOS) {
		spec.Boot = hypervisor.BootOS
	}
	return d.resolveBoot(ctx, api, spec, engineImage, inspected)
}

// initCommand is the init an OS instance boots.
func (cs containerSpec) initCommand() []string {
	if len(cs.spec.Command) > 0 {
		return cs.spec.Command
	}
	return []string{defaultInit}
}

// cgroupMode is how an OS instance gets the cgroup file system its init
// needs; see the comment at the top of this file.
type cgroupMode int

const (
	// cgroupV1Systemd: a cgroup v1 host; the name=systemd hierarchy is
	// bound writable, the controllers stay read-only.
	cgroupV1Systemd cgroupMode = iota
	// cgroupV2Writable: a cgroup v2 host whose engine mounts the
	// instance's cgroup namespace writable when asked
	// (writableCgroupsOpt).
	cgroupV2Writable
	// cgroupV2Gate: a cgroup v2 host with an older local engine; the
	// init waits behind the gate until the driver has made the mount
	// writable (openCgroupGate).
	cgroupV2Gate
)

const (
	// writableCgroupsAPI is the first engine API with the
	// writable-cgroups security option (Docker 28).
	writableCgroupsAPI = "1.48"
	// writableCgroupsOpt asks the engine to mount the container's cgroup
	// namespace writable.
	writableCgroupsOpt = "writable-cgroups=true"
	// gateShell runs the gate.
	gateShell = "/bin/sh"
	// cgroupGateFlag is the file, in the instance's /run, whose
	// existence opens the gate. /run is a tmpfs the engine mounts afresh
	// at every start, so the flag never outlives a start.
	cgroupGateFlag = "/run/.dockervisor-cgroup-writable"
	// gateName is the gate shell's $0 (what ps shows until the init
	// replaces it).
	gateName = "dockervisor-cgroup-gate"
	// gateScript waits for the flag and then executes the init (its
	// arguments) in its place, so that the init is PID 1. It polls:
	// the flag is usually there before the shell first looks.
	gateScript = "until [ -e " + cgroupGateFlag + " ]; do sleep 0.02 2>/dev/null; done; exec \"$@\""
)

// osConfig turns an instance's container configuration into an OS
// instance's; see the comment at the top of this file.
func (cs containerSpec) osConfig(cfg *container.Config, hc *container.HostConfig, mode cgroupMode) {
	// The entrypoint replaces the image's entrypoint and command both.
	cfg.Entrypoint = cs.initCommand()
	cfg.Cmd = nil
	for k, v := range map[string]string{"container": "docker", "product_name": "OpenStack Nova", vifsEnv: vifDevices(len(cs.spec.VIFs))} {
		if _, ok := cs.spec.Env[k]; !ok {
			cfg.Env = append(cfg.Env, k+"="+v)
		}
	}
	slices.Sort(cfg.Env)
	hc.CapAdd = append(hc.CapAdd, "NET_ADMIN")
	cfg.StopSignal = haltSignal
	cfg.Tty = true
	hc.Tmpfs = map[string]string{
		"/run":      "rw,nosuid,nodev,mode=755",
		"/run/lock": "rw,nosuid,nodev,noexec,mode=1777",
	}
	switch mode {
	case cgroupV2Writable:
		hc.CgroupnsMode = container.CgroupnsModePrivate
		hc.SecurityOpt = append(hc.SecurityOpt, writableCgroupsOpt)
	case cgroupV2Gate:
		hc.CgroupnsMode = container.CgroupnsModePrivate
		cfg.Entrypoint = append([]string{gateShell, "-c", gateScript, gateName}, cfg.Entrypoint...)
	default:
		hc.Mounts = append(hc.Mounts, mount.Mount{
			Type: mount.TypeBind, Source: systemdHierarchy, Target: systemdHierarchy,
		})
	}
}

// vifsEnv is the environment variable naming an OS instance's VIF
// devices at create.
const vifsEnv = "DOCKERVISOR_VIFS"

// vifDevices returns "eth0,eth1,…" for n VIFs.
func vifDevices(n int) string {
	devs := make([]string, n)
	for i := range devs {
		devs[i] = "eth" + strconv.Itoa(i)
	}
	return strings.Join(devs, ",")
}

// osCgroupMode decides how an OS instance on this driver's engine gets a
// writable cgroup file system, or why it cannot.
func (d *osRoom) osCgroupMode(ctx context.Context, api APIClient) (cgroupMode, error) {
	v, err := d.cgroupVersion(ctx, api)
	if err != nil {
		return 0, err
	}
	if v != "2" {
		return cgroupV1Systemd, nil
	}
	apiVersion := api.ClientVersion()
	writable := versions.GreaterThanOrEqualTo(apiVersion, writableCgroupsAPI)
	if !d.hosts.isLocalEngine() {
		if writable {
			return cgroupV2Writable, nil // that host's nsdelegate cannot be checked from here
		}
		return 0, fmt.Errorf("%w: OS instances on a cgroup v2 engine host need an engine with writable cgroups "+
			"(Docker 28, API %s); this engine (API %s) is remote, so the driver cannot make the instance's cgroup mount writable itself",
			hypervisor.ErrNotSupported, writableCgroupsAPI, apiVersion)
	}
	if err := checkNsdelegate(); err != nil {
		return 0, fmt.Errorf("%w: OS instances on this cgroup v2 host: %w", hypervisor.ErrNotSupported, err)
	}
	if writable {
		return cgroupV2Writable, nil
	}
	return cgroupV2Gate, nil
}

// osKnownUnsupported reports whether what this Driver has learnt of its
// engine (nothing before its first call) rules OS instances out: a remote
// engine on a cgroup v2 host without writable cgroups.
func (d *osRoom) osKnownUnsupported() bool {
	if d.hosts.isLocalEngine() {
		return false
	}
	d.os.mu.Lock()
	v := d.os.version
	d.os.mu.Unlock()
	return v == "2" && !versions.GreaterThanOrEqualTo(d.api.ClientVersion(), writableCgroupsAPI)
}

// cgroupVersion returns the engine host's cgroup version, asked once per
// Driver (an engine does not change it while it runs).
func (d *osRoom) cgroupVersion(ctx context.Context, api APIClient) (string, error) {
	d.os.mu.Lock()
	defer d.os.mu.Unlock()
	if d.os.version != "" {
		return d.os.version, nil
	}
	info, err := api.Info(ctx, client.InfoOptions{})
	if err != nil {
		return "", fmt.Errorf("engine info: %w", classify(err, hypervisor.ErrUnavailable))
	}
	d.os.version = cgroupVersionOf(info.Info.CgroupVersion)
	return d.os.version, nil
}

// noteCgroupVersion records the cgroup version of an engine info answer
// read for another purpose.
func (d *osRoom) noteCgroupVersion(v string) {
	d.os.mu.Lock()
	defer d.os.mu.Unlock()
	if d.os.version == "" {
		d.os.version = cgroupVersionOf(v)
	}
}

// cgroupVersionOf is the engine info's cgroup version: engines before API
// 1.40, which do not report it, only ran on v1.
func cgroupVersionOf(v string) string {
	if v == "" {
		return "1"
	}
	return v
}

// cgroupCache is the Driver's cached engine cgroup version.
type cgroupCache struct {
	mu      sync.Mutex
	version string
}

// checkInit checks, in created container cid of image imageID, that the
// init is an executable file, following symbolic links. A relative init
// is looked up in PATH by the engine and not checked here. mounts are the
// container's mount targets (see initCacheKey).
func (d *osRoom) checkInit(ctx context.Context, api APIClient, imageID, cid, init string, mounts []string) error {
	if !path.IsAbs(init) {
		return nil
	}
	problem, err := d.execs.check(ctx, api, initCacheKey(imageID, init, mounts), cid, init)
	if err != nil {
		return fmt.Errorf("check init %s: %w", init, err)
	}
	if problem != "" {
		return fmt.Errorf("%w: %s %s", hypervisor.ErrNoInit, init, problem)
	}
	return nil
}

// checkGateShell checks, in created container cid of image imageID, that
// the gate's shell exists.
func (d *osRoom) checkGateShell(ctx context.Context, api APIClient, imageID, cid string) error {
	problem, err := d.execs.check(ctx, api, imageID, cid, gateShell)
	if err != nil {
		return fmt.Errorf("check %s: %w", gateShell, err)
	}
	if problem != "" {
		return fmt.Errorf("%w: the image's %s %s: on a cgroup v2 host whose engine predates writable cgroups (Docker 28), "+
			"an OS instance's init is started by %s once the driver has made its cgroup mount writable",
			hypervisor.ErrNotSupported, gateShell, problem, gateShell)
	}
	return nil
}

// engineMounts are the files the engine mounts into every container.
var engineMounts = []string{"/etc/hosts", "/etc/hostname", "/etc/resolv.conf"}

// initCacheKey is the image ID under which executableCache keeps the
// answer for path p: none ("") when p is under one of mounts or the
// engine's own mounts (engineMounts), which are the instance's, not the
// image's.
func initCacheKey(imageID, p string, mounts []string) string {
	for _, m := range slices.Concat(mounts, engineMounts) {
		if m = path.Clean(m); p == m || strings.HasPrefix(p, strings.TrimSuffix(m, "/")+"/") {
			return ""
		}
	}
	return imageID
}

// executableCache remembers what checkExecutable found, by image ID and
// path. A created container's file system is its image's until it first
// starts (but for what is mounted into it: checkInit does not look up a
// path under a mount, see initCacheKey), and an image ID names the image's
// content, so the answer holds for every container of that image: each
// check costs the engine a mount of the container's file system per link
// followed (about 6 ms here, two for /sbin/init), and a Driver spawns many
// instances of few images.
//
// An answer is looked up by the image ID the spawn inspected and kept
// under the ID of the image the container was made from (one container
// inspect per answer asked of the engine), so that a tag moved between the
// two cannot file one image's answer under another. A tag moved after the
// lookup gives the new image's container the old image's answer: a start
// that fails as a start whose init does not run does, or a spawn refused
// with ErrNoInit that a retry, asking again, would not refuse. Errors are
// not kept; an empty image ID is neither looked up nor kept. The cache is
// emptied when it reaches maxExecutableCache entries.
type executableCache struct {
	mu sync.Mutex
	m  map[executableKey]string
}

// executableKey is an executableCache entry's key.
type executableKey struct{ image, path string }

// maxExecutableCache bounds an executableCache.
const maxExecutableCache = 1024

// executableAPI is what executableCache asks of the engine.
type executableAPI interface {
	osAPI
	ContainerInspect(ctx context.Context, id string, options client.ContainerInspectOptions) (client.ContainerInspectResult, error)
}

// check returns what keeps path p, in created container cid of image
// imageID, from being an executable file, as checkExecutable does, asking
// the engine only for an image and path it has not answered before.
func (c *executableCache) check(ctx context.Context, api executableAPI, imageID, cid, p string) (string, error) {
	if imageID != "" {
		c.mu.Lock()
		problem, ok := c.m[executableKey{imageID, p}]
		c.mu.Unlock()
		if ok {
			return problem, nil
		}
	}
	problem, err := checkExecutable(ctx, api, cid, p)
	if err != nil || imageID == "" {
		return problem, err
	}
	res, err := api.ContainerInspect(ctx, cid, client.ContainerInspectOptions{})
	if err != nil || res.Container.Image == "" {
		return problem, nil // the answer stands; it is just not kept
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= maxExecutableCache {
		c.m = make(map[executableKey]string)
	}
	c.m[executableKey{res.Container.Image, p}] = problem
	return problem, nil
}

// checkExecutable reports what keeps absolute path p, in created
// container cid, from being an executable file (following symbolic
// links): "" when nothing does. err is the engine's.
func checkExecutable(ctx context.Context, api osAPI, cid, p string) (problem string, err error) {
	for range 16 {
		res, err := api.ContainerStatPath(ctx, cid, client.ContainerStatPathOptions{Path: p})
		if isNotFound(err) {
			return "does not exist in the image", nil
		}
		if err != nil {
			return "", classify(err, hypervisor.ErrNotFound)
		}
		st := res.Stat
		switch {
		case st.Mode&fs.ModeSymlink != 0:
			if st.LinkTarget == "" || st.LinkTarget == p {
				return "is a dangling link", nil
			}
			t := st.LinkTarget
			if !path.IsAbs(t) {
				t = path.Join(path.Dir(p), t)
			}
			p = t
		case !st.Mode.IsRegular():
			return "is not a file", nil
		case st.Mode.Perm()&0o111 == 0:
			return "is not executable", nil
		default:
			return "", nil
		}
	}
	return "has too many links", nil
}

// openCgroupGateStep is the post-start step of an instance created with
// the cgroup gate (cgroupV2Gate): it makes the instance's cgroup mount
// writable and lets its init start. Other instances have nothing to do.
func (d *osRoom) openCgroupGateStep(_ context.Context, s startedInstance) error {
	if !s.CgroupGate {
		return nil
	}
	if s.PID <= 0 {
		return errors.New("the instance has no process to open the cgroup gate of")
	}
	return openCgroupGate(s.PID, s.ContainerID)
}

// isOS reports whether the inspected container is an OS instance.
func (d *osRoom) isOS(c container.InspectResponse) bool {
	if c.Config == nil {
		return false
	}
	s, _ := d.specFromLabels(c.Config.Labels)
	return s.Boot == string(hypervisor.BootOS)
}

// noteShutdown records how an OS instance's stop went, after the stop
// path stopped its process: orderly, or killed (at once, or after the
// timeout when the OS did not finish its shutdown in time). It is part of
// the stop path; application instances have nothing to record.
func (d *osRoom) noteShutdown(ctx context.Context, t *target, req stopRequest, began time.Time) error {
	if !d.isOS(t.c) {
		return nil
	}
	res, err := t.api.ContainerInspect(ctx, t.cid, client.ContainerInspectOptions{})
	if err != nil {
		return fmt.Errorf("inspect after stop: %w", classify(err, hypervisor.ErrNotFound))
	}
	r := hypervisor.ShutdownReport{At: time.Now(), Duration: time.Since(began)}
	if st := res.Container.State; st != nil {
		r.ExitCode = st.ExitCode
		if at := parseTime(st.FinishedAt); !at.IsZero() {
			r.At = at
		}
	}
	killed := r.ExitCode == killedExitCode
	r.Orderly = !killed && !req.Kill
	r.TimedOut = killed && !req.Kill && req.Timeout >= 0
	if r.TimedOut {
		d.log.DebugContext(ctx, "OS shutdown timed out; killed", "id", t.id, "took", r.Duration)
	}
	rec := t.rec
	rec.LastShutdown = &r
	return d.records.save(t, rec)
}

// OSStatus reports what the OS in an OS instance says about itself: its
// init's state and failed units and cloud-init's status, asked with one
// command in the instance while it runs, and the driver's record of the
// last shutdown. An application instance returns ErrNotSupported.
func (d *osRoom) OSStatus(ctx context.Context, id string) (hypervisor.OSStatus, error) {
	st, _, err := d.osStatus(ctx, id)
	return st, opErr("os-status", id, err)
}

// osStatusScript prints the init's state, the failed units and
// cloud-init's own status files, separated by marker lines. It needs only
// a POSIX shell and systemctl: cloud-init's status is read from the files
// its stages write (what `cloud-init status` reads), without starting
// Python on every poll.
const osStatusScript = `systemctl is-system-running 2>/dev/null
echo @@
systemctl list-units --state=failed --plain --no-legend --no-pager 2>/dev/null
echo @@
if command -v cloud-init >/dev/null 2>&1; then
if [ -e /run/cloud-init/disabled ]; then echo disabled; else echo installed; fi
echo @@; cat /run/cloud-init/status.json 2>/dev/null
echo @@; cat /run/cloud-init/result.json 2>/dev/null
fi
`

// osStatus returns the status and the instance's state.
func (d *osRoom) osStatus(ctx context.Context, id string) (hypervisor.OSStatus, hypervisor.State, error) {
	t, err := d.osTarget(ctx, id)
	if err != nil {
		if t != nil {
			return hypervisor.OSStatus{}, t.cur, err
		}
		return hypervisor.OSStatus{}, hypervisor.StateUnknown, err
	}
	st := offlineStatus(t)
	if t.cur != hypervisor.StateRunning {
		return st, t.cur, nil
	}
	d.step(stepBootPoll)
	var out bytes.Buffer
	if _, err := d.guest.exec(ctx, id, hypervisor.ExecSpec{Args: []string{"/bin/sh", "-c", osStatusScript}, Stdout: &out}); err != nil {
		return st, t.cur, err
	}
	st.System = ""
	parseOSStatus(out.String(), &st)
	return st, t.cur, nil
}

// osTarget looks OS instance id up, under its lock. An application
// instance returns its target and ErrNotSupported.
func (d *osRoom) osTarget(ctx context.Context, id string) (*target, error) {
	if err := hypervisor.ValidateID(id); err != nil {
		return nil, err
	}
	api, unlock, err := d.lockInstance(ctx, id)
	if err != nil {
		return nil, err
	}
	t, err := d.life.current(ctx, api, id)
	unlock()
	if err != nil {
		return nil, err
	}
	if !d.isOS(t.c) {
		return t, fmt.Errorf("%w: %s is not an OS instance", hypervisor.ErrNotSupported, id)
	}
	return t, nil
}

// offlineStatus is what the driver knows of an OS instance without asking
// it: the last shutdown, and an offline system.
func offlineStatus(t *target) hypervisor.OSStatus {
	st := hypervisor.OSStatus{System: hypervisor.SystemOffline}
	if t.rec.LastShutdown != nil {
		st.LastShutdown = *t.rec.LastShutdown
	}
	return st
}

// parseOSStatus reads osStatusScript's output into st. cloud-init's
// status follows `cloud-init status`: done once result.json is written
// (error if it lists errors), running while only status.json exists
// (error if a stage reported one), "not run" before, "disabled" when its
// generator disabled it.
func parseOSStatus(out string, st *hypervisor.OSStatus) {
	parts := strings.Split(out, "@@\n")
	for len(parts) < 5 {
		parts = append(parts, "")
	}
	st.System = strings.TrimSpace(parts[0])
	for _, line := range strings.Split(parts[1], "\n") {
		if f := strings.Fields(line); len(f) > 0 {
			st.FailedUnits = append(st.FailedUnits, f[0])
		}
	}
	switch strings.TrimSpace(parts[2]) {
	case "":
		return // no cloud-init
	case "disabled":
		st.CloudInit.Status = "disabled"
		return
	}
	var status struct {
		V1 map[string]json.RawMessage `json:"v1"`
	}
	var result struct {
		V1 struct {
			Datasource string   `json:"datasource"`
			Errors     []string `json:"errors"`
		} `json:"v1"`
	}
	hasStatus := json.Unmarshal([]byte(parts[3]), &status) == nil && status.V1 != nil
	hasResult := json.Unmarshal([]byte(parts[4]), &result) == nil && strings.TrimSpace(parts[4]) != ""
	ci := hypervisor.CloudInitStatus{Status: "not run"}
	if hasStatus {
		ci.Status = "running"
		var ds string
		_ = json.Unmarshal(status.V1["datasource"], &ds)
		ci.Datasource = datasourceName(ds)
		for _, k := range slices.Sorted(maps.Keys(status.V1)) {
			var stage struct {
				Errors []string `json:"errors"`
			}
			if json.Unmarshal(status.V1[k], &stage) == nil {
				ci.Errors = append(ci.Errors, stage.Errors...)
			}
		}
	}
	if hasResult {
		ci.Status = "done"
		if ds := datasourceName(result.V1.Datasource); ds != "" {
			ci.Datasource = ds
		}
		ci.Errors = append(ci.Errors, result.V1.Errors...)
	}
	ci.Errors = slices.Compact(slices.Sorted(slices.Values(ci.Errors)))
	if len(ci.Errors) > 0 {
		ci.Status = "error"
	}
	st.CloudInit = ci
}

// datasourceName turns cloud-init's "DataSourceConfigDrive [net,ver=2]
// [source=...]" into "configdrive", as `cloud-init status` does.
func datasourceName(s string) string {
	s, _, _ = strings.Cut(s, " ")
	return strings.ToLower(strings.TrimPrefix(s, "DataSource"))
}

// bootPoll is how often WaitBooted asks an instance whose image does not
// report the end of its boot, at most: after each question it waits at
// least as long as the question took (pollPause), so that on a loaded
// host, where an exec takes long, the questions take no more than half of
// the wait and leave the CPU to the boot they wait for.
const bootPoll = 50 * time.Millisecond

// pollPause is how long WaitBooted waits after a question to the
// instance that took took: bootPoll, or took when that is longer.
func pollPause(took time.Duration) time.Duration { return max(bootPoll, took) }

// The steps WaitBooted shows the step hook: a status read from the boot
// report, and one asked from the instance.
const (
	stepBootReport = "boot-report"
	stepBootPoll   = "boot-poll"
)

// WaitBooted waits until the OS in a running OS instance has finished
// booting: its init reports running (or degraded, which is an error
// wrapping hypervisor.ErrDegraded) and, with opts.CloudInit, cloud-init has
// finished (an error status wraps hypervisor.ErrCloudInit; an image
// without cloud-init is ErrNotSupported). An image that reports the end
// of its boot on the console (package osimage's do, see bootreport.go) is
// waited for on the console log, and asked only every 5 s meanwhile;
// another is asked every 50 ms, or, when asking takes longer, after a
// pause as long as the question took. It holds no lock while it waits; an
// instance that stops meanwhile returns a *hypervisor.StateError.
func (d *osRoom) WaitBooted(ctx context.Context, id string, opts hypervisor.WaitBootOptions) (hypervisor.OSStatus, error) {
	st, err := d.waitBooted(ctx, id, opts)
	return st, opErr("wait-booted", id, err)
}

func (d *osRoom) waitBooted(ctx context.Context, id string, opts hypervisor.WaitBootOptions) (hypervisor.OSStatus, error) {
	// polled is the run (its start) whose report has been read, or
	// whose console cannot be followed: it is asked from then on.
	var polled string
	for {
		t, err := d.osTarget(ctx, id)
		if err != nil {
			return hypervisor.OSStatus{}, err
		}
		if t.cur != hypervisor.StateRunning {
			return offlineStatus(t), &hypervisor.StateError{Op: "wait-booted", ID: id, Current: t.cur, Want: []hypervisor.State{hypervisor.StateRunning}}
		}
		if hasBootReport(t.c) && t.c.State.StartedAt != polled {
			started := t.c.State.StartedAt
			st, found, err := d.awaitBootReport(ctx, t.api, t.c, bootBackstop)
			switch {
			case errors.Is(err, errNoConsoleLog):
				d.log.DebugContext(ctx, "boot report unreadable; asking the instance", "id", id, "err", err)
				polled = started
			case err != nil:
				st := offlineStatus(t)
				st.System = ""
				return st, fmt.Errorf("boot not finished: %w", err)
			case found:
				d.step(stepBootReport)
				if rec := t.rec.LastShutdown; rec != nil {
					st.LastShutdown = *rec
				}
				if done, err := bootDone(st, opts); done {
					return st, err
				}
				polled = started // a boot that ended with cloud-init still at work
			}
		}
		asked := time.Now()
		st, cur, err := d.osStatus(ctx, id)
		switch {
		case err != nil && !errors.Is(err, hypervisor.ErrCommandNotFound):
			return st, err
		case cur != hypervisor.StateRunning:
			return st, &hypervisor.StateError{Op: "wait-booted", ID: id, Current: cur, Want: []hypervisor.State{hypervisor.StateRunning}}
		}
		if done, err := bootDone(st, opts); done {
			return st, err
		}
		pause := time.NewTimer(pollPause(time.Since(asked)))
		select {
		case <-ctx.Done():
			pause.Stop()
			return st, fmt.Errorf("boot not finished (system %q, cloud-init %q): %w", st.System, st.CloudInit.Status, ctx.Err())
		case <-pause.C:
		}
	}
}

// bootDone reports whether st is the end of a boot, and its error. With
// opts.CloudInit a cloud-init error is reported before a degraded system,
// which it usually causes (cloud-final.service fails with it).
func bootDone(st hypervisor.OSStatus, opts hypervisor.WaitBootOptions) (bool, error) {
	switch st.System {
	case hypervisor.SystemRunning, hypervisor.SystemDegraded, hypervisor.SystemMaintenance:
	default:
		return false, nil // initializing, starting, or systemd not answering yet
	}
	if opts.CloudInit {
		switch st.CloudInit.Status {
		case "":
			return true, fmt.Errorf("%w: the image has no cloud-init", hypervisor.ErrNotSupported)
		case "error":
			return true, fmt.Errorf("%w: %s", hypervisor.ErrCloudInit, strings.Join(st.CloudInit.Errors, "; "))
		case "disabled":
			return true, fmt.Errorf("%w: cloud-init is disabled in the instance", hypervisor.ErrCloudInit)
		case "done":
		default:
			if st.System == hypervisor.SystemRunning {
				return false, nil // not run yet, or running
			}
		}
	}
	if st.System != hypervisor.SystemRunning {
		return true, fmt.Errorf("%w: system %s, failed units: %s", hypervisor.ErrDegraded, st.System, strings.Join(st.FailedUnits, ", "))
	}
	return true, nil
}
