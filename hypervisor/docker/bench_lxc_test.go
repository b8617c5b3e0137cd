package docker

import (
	"context"
	"errors"
	"fmt"
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

// lxcPeer boots the OS image's root file system with LXC (lxc-start of
// Debian's lxc package, a privileged container, no network, the same
// memory limit): the file system is exported from the engine once per
// benchmark run, and each boot runs on a fresh overlay of it, so that no
// boot finds what an earlier one left (machine-id, cloud-init's state).
// Each iteration boots it twice: with cloud-init disabled
// (/etc/cloud/cloud-init.disabled) to the OS running, which
// BenchmarkOSInstance compares with the driver's instance booting the
// image with cloud-init disabled as well, and with cloud-init enabled but
// no datasource (it falls back to None) to cloud-init done. The status is
// polled as WaitBooted's fallback polls it, by lxc-attach (every bootPoll,
// with pollPause's pauses).
func lxcPeer(cli *client.Client, image string) osBootPeer {
	var rootfs string // the exported file system, made by the first boot
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
		running, _, err = lxcBoot(ctx, rootfs, fmt.Sprintf("lxc%d-off", i), false, nil, offTimeline)
		if err != nil {
			return 0, 0, err
		}
		_, cloudInit, err = lxcBoot(ctx, rootfs, fmt.Sprintf("lxc%d-on", i), true, stages, timeline)
		if err != nil {
			return 0, 0, err
		}
		return running, cloudInit, nil
	}
	return osBootPeer{name: "lxc", cloudInitOff: true, boot: boot, stages: stages, offTimeline: offTimeline, timeline: timeline}
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

// lxcBoot boots rootfs once in an LXC container named name (on a fresh
// overlay, in a directory it removes before it returns), with cloud-init
// enabled or disabled, and returns the times from lxc-start to the OS
// running and, when cloudInit, to cloud-init done (adding the time of
// cloud-init's stages to stages), and adds the boot, to the OS running
// or to cloud-init done, to timeline.
func lxcBoot(ctx context.Context, rootfs, name string, cloudInit bool, stages map[string]time.Duration, timeline *bootTimeline) (running, done time.Duration, err error) {
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
	if cloudInit {
		toggle, content = "ds-identify.cfg", lxcDSIdentify
	}
	if err := os.WriteFile(filepath.Join(upper, "etc", "cloud", toggle), []byte(content), 0o644); err != nil {
		return 0, 0, err
	}
	memory := "lxc.cgroup.memory.limit_in_bytes = 268435456"
	if testenv.CgroupV2() {
		memory = "lxc.cgroup2.memory.max = 268435456"
	}
	conf := filepath.Join(dir, "config")
	if err := os.WriteFile(conf, []byte(strings.Join([]string{
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
		"",
	}, "\n")), 0o644); err != nil {
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
	wait := func(opts hypervisor.WaitBootOptions) error {
		ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		defer cancel()
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
				if ok, err := bootDone(st, opts); ok {
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
	if err := wait(hypervisor.WaitBootOptions{}); err != nil {
		return 0, 0, err
	}
	running = time.Since(t0)
	end, _ := monotonicNow()
	if cloudInit {
		if err := wait(hypervisor.WaitBootOptions{CloudInit: true}); err != nil {
			return 0, 0, err
		}
		done = time.Since(t0)
		end, _ = monotonicNow()
	}
	if clock {
		out, err := lxc("lxc-attach", append([]string{"--"}, guestShowProps...)...).Output()
		if err != nil {
			return 0, 0, fmt.Errorf("systemd's times in the LXC guest: %w", err)
		}
		if err := timeline.add(begun, end, string(out)); err != nil {
			return 0, 0, err
		}
	}
	if !cloudInit {
		return running, 0, nil
	}
	out, err := lxc("lxc-attach", "--", "cat", "/run/cloud-init/status.json").Output()
	if err != nil {
		return 0, 0, fmt.Errorf("cloud-init's status in the LXC guest: %w", err)
	}
	if err := cloudInitStages(string(out), stages); err != nil {
		return 0, 0, err
	}
	return running, done, nil
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
