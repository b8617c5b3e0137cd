package docker

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/dockervisor/dockervisor/hypervisor"
	"github.com/dockervisor/dockervisor/internal/testenv"
)

// lxcDSIdentify lets cloud-init run in an LXC guest that has no
// datasource (no config drive, no metadata service): ds-identify then
// enables it, and cloud-init falls back to the None datasource.
const lxcDSIdentify = "policy: search,found=all,maybe=all,notfound=enabled\n"

// lxcPeers boots the OS image's root file system with LXC (lxc-start of
// Debian's lxc package, a privileged container, no network, the same
// memory limit): the file system is exported from the engine once per
// benchmark run, and each boot runs on a fresh overlay of it, so that no
// boot finds what an earlier one left (machine-id, cloud-init's state).
// Each iteration boots it twice per peer: with cloud-init disabled
// (/etc/cloud/cloud-init.disabled) to the OS running, which
// BenchmarkOSInstance compares with the driver's instance booting the
// image with cloud-init disabled as well, and with cloud-init enabled but
// no datasource (it falls back to None) to cloud-init done.
//
// The two peers differ in how they learn the end of the boot. Peer "lxc"
// polls the status as WaitBooted's fallback polls it, by lxc-attach
// (every bootPoll, with pollPause's pauses): each poll runs processes in
// the guest while it boots. Peer "lxc-console" runs nothing in the guest
// until the boot has ended: it follows the console log LXC keeps
// (lxc.console.logfile) for the image's boot report, as WaitBooted
// follows the engine's log, which makes it the stricter baseline.
func lxcPeers(cli *client.Client, image string) []osBootPeer {
	var rootfs string // the exported file system, made by the first boot
	peer := func(name string, console bool) osBootPeer {
		stages := map[string]time.Duration{}
		offTimeline, timeline := new(bootTimeline), new(bootTimeline)
		boot := func(ctx context.Context, b *testing.B, i int, _ string) (running, cloudInit time.Duration, err error) {
			b.Helper()
			if _, err := exec.LookPath("lxc-start"); err != nil {
				return 0, 0, fmt.Errorf("LXC is not installed (scripts/setup.sh installs it): %w", err)
			}
			if rootfs == "" {
				dir, err := os.MkdirTemp("", "dv-bench-lxc-")
				if err != nil {
					return 0, 0, err
				}
				b.Cleanup(func() {
					if err := os.RemoveAll(dir); err != nil {
						b.Errorf("remove the LXC peer's directory: %v", err)
					}
				})
				if err := exportRootfs(ctx, cli, image, filepath.Join(dir, "rootfs")); err != nil {
					return 0, 0, err
				}
				rootfs = filepath.Join(dir, "rootfs")
			}
			running, _, err = lxcBoot(ctx, rootfs, fmt.Sprintf("%s%d-off", name, i), lxcBootOptions{console: console, offTimeline: offTimeline})
			if err != nil {
				return 0, 0, err
			}
			_, cloudInit, err = lxcBoot(ctx, rootfs, fmt.Sprintf("%s%d-on", name, i), lxcBootOptions{cloudInit: true, console: console, stages: stages, timeline: timeline})
			if err != nil {
				return 0, 0, err
			}
			return running, cloudInit, nil
		}
		return osBootPeer{name: name, cloudInitOff: true, boot: boot, stages: stages, offTimeline: offTimeline, timeline: timeline}
	}
	return []osBootPeer{peer("lxc", false), peer("lxc-console", true)}
}

// exportRootfs writes the file system of image into dir, as the engine
// exports a container made from it.
func exportRootfs(ctx context.Context, cli *client.Client, image, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	c, err := cli.ContainerCreate(ctx, client.ContainerCreateOptions{
		Name:   testenv.UniqueName("dv-bench-lxc-export-"),
		Config: &container.Config{Image: image, Entrypoint: []string{"/bin/true"}},
	})
	if err != nil {
		return err
	}
	defer func() {
		_, _ = cli.ContainerRemove(context.WithoutCancel(ctx), c.ID, client.ContainerRemoveOptions{Force: true})
	}()
	rc, err := cli.ContainerExport(ctx, c.ID, client.ContainerExportOptions{})
	if err != nil {
		return err
	}
	defer func() { _ = rc.Close() }()
	cmd := exec.CommandContext(ctx, "tar", "-x", "--numeric-owner", "-C", dir)
	cmd.Stdin = rc
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("extract the image's file system: %w: %s", err, out)
	}
	return nil
}

// lxcBootOptions is how lxcBoot boots and observes a guest.
type lxcBootOptions struct {
	// cloudInit enables cloud-init in the guest (with no datasource);
	// otherwise it is disabled.
	cloudInit bool
	// console learns the end of the boot from the boot report on the
	// console log instead of polling the guest (see lxcPeers).
	console bool
	// stages, with cloudInit, sums the time of cloud-init's stages.
	stages map[string]time.Duration
	// offTimeline and timeline sum the boot (see bootTimeline), to the
	// OS running without cloudInit, to cloud-init done with it.
	offTimeline, timeline *bootTimeline
}

// lxcBoot boots rootfs once in an LXC container named name (on a fresh
// overlay, in a directory it removes before it returns), as opts says,
// and returns the times from lxc-start to the OS running and, with
// opts.cloudInit, to cloud-init done.
func lxcBoot(ctx context.Context, rootfs, name string, opts lxcBootOptions) (running, done time.Duration, err error) {
	dir, err := os.MkdirTemp(filepath.Dir(rootfs), name+"-")
	if err != nil {
		return 0, 0, err
	}
	defer func() {
		if rerr := os.RemoveAll(dir); rerr != nil && err == nil {
			err = rerr
		}
	}()
	upper := filepath.Join(dir, "upper")
	if err := os.MkdirAll(filepath.Join(upper, "etc", "cloud"), 0o755); err != nil {
		return 0, 0, err
	}
	toggle, content := "cloud-init.disabled", ""
	if opts.cloudInit {
		toggle, content = "ds-identify.cfg", lxcDSIdentify
	}
	if err := os.WriteFile(filepath.Join(upper, "etc", "cloud", toggle), []byte(content), 0o644); err != nil {
		return 0, 0, err
	}
	memory := "lxc.cgroup.memory.limit_in_bytes = 268435456"
	if testenv.CgroupV2() {
		memory = "lxc.cgroup2.memory.max = 268435456"
	}
	lines := []string{
		"lxc.include = /usr/share/lxc/config/common.conf",
		"lxc.arch = linux64",
		"lxc.uts.name = " + name,
		"lxc.rootfs.path = overlayfs:" + rootfs + ":" + upper,
		"lxc.net.0.type = empty",
		"lxc.apparmor.profile = unconfined",
		"lxc.mount.auto = proc:mixed sys:mixed cgroup:mixed",
		"lxc.tty.max = 0",
		"lxc.pty.max = 16",
		"lxc.signal.halt = SIGRTMIN+3",
		memory,
	}
	consoleLog := filepath.Join(dir, "console.log")
	if opts.console {
		lines = append(lines, "lxc.console.logfile = "+consoleLog)
	}
	conf := filepath.Join(dir, "config")
	if err := os.WriteFile(conf, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		return 0, 0, err
	}
	lxc := func(cmd string, args ...string) *exec.Cmd {
		return exec.CommandContext(ctx, cmd, append([]string{"-n", name, "-P", dir}, args...)...)
	}
	t0 := time.Now()
	begun, clock := monotonicNow()
	if out, err := lxc("lxc-start", "-d", "-f", conf, "-o", filepath.Join(dir, "log"), "-l", "INFO").CombinedOutput(); err != nil {
		log, _ := os.ReadFile(filepath.Join(dir, "log"))
		return 0, 0, fmt.Errorf("lxc-start: %w: %s%s", err, out, lastLines(string(log), 10))
	}
	defer func() {
		if out, serr := lxc("lxc-stop", "-k").CombinedOutput(); serr != nil && err == nil {
			err = fmt.Errorf("lxc-stop: %w: %s", serr, out)
		}
	}()
	poll := func(ctx context.Context, wopts hypervisor.WaitBootOptions) error {
		var last string
		for {
			// The script's exit status is its last command's (a cat
			// of a file cloud-init may not have written): what it
			// printed is the answer, as for the engine's exec.
			asked := time.Now()
			out, _ := lxc("lxc-attach", "--", "/bin/sh", "-c", osStatusScript).Output()
			if len(out) > 0 {
				var st hypervisor.OSStatus
				parseOSStatus(string(out), &st)
				if ok, err := bootDone(st, wopts); ok {
					return err
				}
			}
			last = string(out)
			select {
			case <-ctx.Done():
				return fmt.Errorf("LXC guest %s did not boot: %w (last status: %q)", name, ctx.Err(), last)
			case <-time.After(pollPause(time.Since(asked))):
			}
		}
	}
	// report reads the console log, from its start, until a boot report
	// that says the boot is done; the log is followed by rereading its
	// end every followPause (no process runs in the guest meanwhile).
	// The status of the last report is kept for the next wait (cloud-init
	// done comes with the report of the boot's end). Unlike WaitBooted,
	// it has no fallback: a boot whose report is lost fails the peer
	// after the wait's timeout.
	ff := &followFile{ctx: ctx, path: consoleLog}
	defer ff.close()
	console := bufio.NewReader(ff)
	var last *hypervisor.OSStatus
	report := func(wopts hypervisor.WaitBootOptions) error {
		if last != nil {
			if ok, err := bootDone(*last, wopts); ok {
				return err
			}
		}
		for {
			line, err := console.ReadBytes('\n')
			if st, ok := parseBootReport(line); ok {
				last = &st
				if ok, err := bootDone(st, wopts); ok {
					return err
				}
			}
			if err != nil {
				return fmt.Errorf("LXC guest %s: no boot report on its console: %w", name, err)
			}
		}
	}
	// wait waits for the boot, as opts.console says, for at most 2 minutes.
	wait := func(wopts hypervisor.WaitBootOptions) error {
		wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		defer cancel()
		if opts.console {
			ff.ctx = wctx
			return report(wopts)
		}
		return poll(wctx, wopts)
	}
	if err := wait(hypervisor.WaitBootOptions{}); err != nil {
		return 0, 0, err
	}
	running = time.Since(t0)
	end, _ := monotonicNow()
	timeline := opts.offTimeline
	if opts.cloudInit {
		if err := wait(hypervisor.WaitBootOptions{CloudInit: true}); err != nil {
			return 0, 0, err
		}
		done = time.Since(t0)
		end, _ = monotonicNow()
		timeline = opts.timeline
	}
	if clock && timeline != nil {
		out, err := lxc("lxc-attach", append([]string{"--"}, guestShowProps...)...).Output()
		if err != nil {
			return 0, 0, fmt.Errorf("systemd's times in the LXC guest: %w", err)
		}
		if err := timeline.add(begun, end, string(out)); err != nil {
			return 0, 0, err
		}
	}
	if !opts.cloudInit {
		return running, 0, nil
	}
	out, err := lxc("lxc-attach", "--", "cat", "/run/cloud-init/status.json").Output()
	if err != nil {
		return 0, 0, fmt.Errorf("cloud-init's status in the LXC guest: %w", err)
	}
	if err := cloudInitStages(string(out), opts.stages); err != nil {
		return 0, 0, err
	}
	return running, done, nil
}

// followPause is how long followFile waits at the end of its file.
const followPause = 2 * time.Millisecond

// followFile reads the file at path as it grows, from its start: at its
// end (or before it exists) Read waits followPause and tries again, until
// ctx is done.
type followFile struct {
	ctx  context.Context
	path string
	f    *os.File
}

// close closes the file if it was opened.
func (ff *followFile) close() {
	if ff.f != nil {
		_ = ff.f.Close()
	}
}

// Read reads what the file has beyond what was read, waiting for it.
func (ff *followFile) Read(p []byte) (int, error) {
	for {
		if ff.f == nil {
			f, err := os.Open(ff.path)
			switch {
			case err == nil:
				ff.f = f
			case !errors.Is(err, fs.ErrNotExist):
				return 0, err
			}
		}
		if ff.f != nil {
			n, err := ff.f.Read(p)
			if n > 0 {
				return n, nil
			}
			if err != nil && !errors.Is(err, io.EOF) {
				return 0, err
			}
		}
		select {
		case <-ff.ctx.Done():
			return 0, ff.ctx.Err()
		case <-time.After(followPause):
		}
	}
}

// lastLines returns the last n lines of s.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// cloudInitOffImage commits a copy of image with cloud-init disabled
// (/etc/cloud/cloud-init.disabled), the driver's side of the peers that
// boot with cloud-init off; the image is removed when b ends.
func cloudInitOffImage(ctx context.Context, b *testing.B, cli *client.Client, image string) string {
	b.Helper()
	c, err := cli.ContainerCreate(ctx, client.ContainerCreateOptions{
		Name:   testenv.UniqueName("dv-bench-ci-off-"),
		Config: &container.Config{Image: image},
	})
	if err != nil {
		b.Fatal(err)
	}
	defer func() {
		_, _ = cli.ContainerRemove(context.WithoutCancel(ctx), c.ID, client.ContainerRemoveOptions{Force: true})
	}()
	dir := b.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "cloud-init.disabled"), nil, 0o644); err != nil {
		b.Fatal(err)
	}
	tarball, err := exec.CommandContext(ctx, "tar", "-c", "--owner=0", "--group=0", "-C", dir, "cloud-init.disabled").Output()
	if err != nil {
		b.Fatal(err)
	}
	if _, err := cli.CopyToContainer(ctx, c.ID, client.CopyToContainerOptions{DestinationPath: "/etc/cloud", Content: strings.NewReader(string(tarball))}); err != nil {
		b.Fatal(err)
	}
	ref := testenv.UniqueName("dockervisor/bench-os-ci-off:t")
	res, err := cli.ContainerCommit(ctx, c.ID, client.ContainerCommitOptions{Reference: ref})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		if _, err := cli.ImageRemove(context.Background(), res.ID, client.ImageRemoveOptions{Force: true, PruneChildren: true}); err != nil && !errors.Is(err, context.Canceled) {
			b.Errorf("remove the cloud-init-off image: %v", err)
		}
	})
	return ref
}
