package docker

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/client"

	"github.com/dockervisor/dockervisor/configdrive"
	"github.com/dockervisor/dockervisor/hypervisor"
	"github.com/dockervisor/dockervisor/internal/testenv"
)

// osBenchUserData is the user-data every boot of BenchmarkOSInstance
// gets: cloud-init runs a command from it.
var osBenchUserData = []byte("#cloud-config\nlocale: C.UTF-8\nruncmd:\n  - [ touch, /run/user-data-ran ]\n")

// osBootPeer is another way to boot the OS image, which
// BenchmarkOSInstance measures in the same iterations as the driver's OS
// instance: boot boots the image once with the benchmark's user-data and
// SSH key on a config drive, and returns the times from its start to the
// OS running (`systemctl is-system-running`) and to cloud-init done. It
// removes what it made before it returns. A peer that cannot boot on
// this host returns an error: the benchmark logs it and reports nothing
// for that peer. A new peer (nspawn…) is one more entry in osBootPeers.
type osBootPeer struct {
	// name names its metrics: <name>-to-running-ms,
	// <name>-to-cloudinit-done-ms, and the ratios running/<name> (or
	// os-running/<name> with cloudInitOff) and cloudinit/<name> (the
	// driver's time over the peer's).
	name string
	// cloudInitOff says that the peer's running time is measured with
	// cloud-init disabled in its guest: it is compared with the driver's
	// instance booting the image with cloud-init disabled too.
	cloudInitOff bool
	boot         func(ctx context.Context, b *testing.B, i int, key string) (running, cloudInit time.Duration, err error)
	// stages, if set, sums the time of each of cloud-init's stages in
	// the peer's boots to cloud-init done (see cloudInitStages).
	stages map[string]time.Duration
	// offTimeline and timeline, if set, sum where the time of the peer's
	// boots went (see bootTimeline): the boots that running measured,
	// and those to cloud-init done.
	offTimeline, timeline *bootTimeline
}

// bootTimeline splits boots at the guest's systemd,
// on the monotonic clock the guest shares with the host (monotonicNow):
// before is from the boot's start on the host to systemd's start as the
// guest's init, guest from there to the end of systemd's startup (of
// which cloud-init's last stage is a part), after from there to the
// host's knowing it. n counts the boots summed.
type bootTimeline struct {
	before, guest, after time.Duration
	n                    int
}

// guestShowProps asks a guest's systemd when it started and when its
// startup finished, on the monotonic clock (see guestTimes).
var guestShowProps = []string{"systemctl", "show", "-p", "UserspaceTimestampMonotonic", "-p", "FinishTimestampMonotonic"}

// guestTimes reads the output of guestShowProps: systemd's start as the
// guest's init and the end of its startup, in microseconds of
// CLOCK_MONOTONIC. A startup that has not finished is an error.
func guestTimes(out string) (start, finish time.Duration, err error) {
	props := map[string]time.Duration{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), "=")
		if !ok {
			continue
		}
		us, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("systemd's %s in %q: %w", k, out, err)
		}
		props[k] = time.Duration(us) * time.Microsecond
	}
	start, finish = props["UserspaceTimestampMonotonic"], props["FinishTimestampMonotonic"]
	if start <= 0 || finish < start {
		return 0, 0, fmt.Errorf("no systemd start and startup end in %q", out)
	}
	return start, finish, nil
}

// add adds a boot that started at begun and was known done at done (the
// host's monotonic clock) to the timeline, from the guest's answer to
// guestShowProps.
func (tl *bootTimeline) add(begun, done time.Duration, out string) error {
	start, finish, err := guestTimes(out)
	if err != nil {
		return err
	}
	if start < begun || done < finish {
		return fmt.Errorf("the guest's systemd (%v to %v) is outside the boot (%v to %v): not the host's clock", start, finish, begun, done)
	}
	tl.before += start - begun
	tl.guest += finish - start
	tl.after += done - finish
	tl.n++
	return nil
}

// report reports the timeline's averages as prefix-before-init-ms,
// prefix-guest-ms and prefix-after-boot-ms.
func (tl *bootTimeline) report(b *testing.B, prefix string) {
	if tl.n == 0 {
		return
	}
	per := func(d time.Duration) float64 { return float64(d.Milliseconds()) / float64(tl.n) }
	b.ReportMetric(per(tl.before), prefix+"-before-init-ms")
	b.ReportMetric(per(tl.guest), prefix+"-guest-ms")
	b.ReportMetric(per(tl.after), prefix+"-after-boot-ms")
}

// osBootPeers returns the peers of BenchmarkOSInstance.
func osBootPeers(cli *client.Client, image string) []osBootPeer {
	peers := []osBootPeer{privilegedPeer(cli, image)}
	peers = append(peers, lxcPeers(cli, image)...)
	return append(peers, runtimePeer(cli, image, "crun"))
}

// runtimePeer boots the image as the driver's instance does, on a Driver
// of the same engine that runs its instances under the engine's OCI
// runtime name (WithRuntime): the same spec, the same waits. It cannot
// boot where the engine has no such runtime, or the runtime refuses the
// host (crun on hybrid cgroups).
func runtimePeer(cli *client.Client, image, name string) osBootPeer {
	var d *Driver
	timeline := new(bootTimeline)
	boot := func(ctx context.Context, b *testing.B, i int, key string) (running, cloudInit time.Duration, err error) {
		b.Helper()
		if d == nil {
			d = benchDriver(b, cli, testenv.UniqueName("b"), WithRuntime(name))
		}
		spec := osBenchSpec(fmt.Sprintf("%s%d", name, i), image, key)
		defer func() {
			if derr := d.Destroy(context.WithoutCancel(ctx), spec.ID); derr != nil && err == nil {
				err = derr
			}
		}()
		running, cloudInit, _, err = bootToCloudInit(ctx, cli, d, spec, timeline)
		return running, cloudInit, err
	}
	return osBootPeer{name: name, boot: boot, timeline: timeline}
}

// osBenchSpec is the spec of the benchmark's OS instances: the
// benchmark's user-data and key on the config drive.
func osBenchSpec(id, image, key string) hypervisor.InstanceSpec {
	return hypervisor.InstanceSpec{
		ID: id, Image: image, MemoryMB: 256,
		UserData: osBenchUserData,
		SSHKeys:  []hypervisor.SSHKey{{Name: "k", Data: key}},
	}
}

// bootToCloudInit spawns spec on d and waits for the OS running and for
// cloud-init done, returning the times from the Spawn call and the
// status; it adds the boot to timeline (see bootTimeline).
func bootToCloudInit(ctx context.Context, cli *client.Client, d *Driver, spec hypervisor.InstanceSpec, timeline *bootTimeline) (running, cloudInit time.Duration, st hypervisor.OSStatus, err error) {
	t0 := time.Now()
	begun, clock := monotonicNow()
	if _, err := d.Spawn(ctx, spec); err != nil {
		return 0, 0, st, err
	}
	if _, err := d.WaitBooted(ctx, spec.ID, hypervisor.WaitBootOptions{}); err != nil {
		return 0, 0, st, err
	}
	running = time.Since(t0)
	if st, err = d.WaitBooted(ctx, spec.ID, hypervisor.WaitBootOptions{CloudInit: true}); err != nil {
		return 0, 0, st, err
	}
	cloudInit = time.Since(t0)
	if done, _ := monotonicNow(); clock {
		out, err := execOutput(ctx, cli, d.containerName(spec.ID), guestShowProps...)
		if err != nil {
			return 0, 0, st, err
		}
		if err := timeline.add(begun, done, out); err != nil {
			return 0, 0, st, err
		}
	}
	return running, cloudInit, st, nil
}

// BenchmarkOSInstance measures an OS instance (the shared Debian image with
// systemd, cloud-init and openssh-server) from Spawn to `systemctl
// is-system-running` = running, from Spawn to cloud-init done (user-data
// and a key on the config drive), and its orderly power-off. Baselines,
// in the same iterations:
//   - each osBootPeer booting the same image, such as the same engine
//     running it --privileged (what an unprivileged OS instance is meant
//     to cost no more than: target running/privileged and
//     cloudinit/privileged ≤ 1.1);
//   - LXC booting the image's root file system (lxcPeers): the driver's
//     instance booting the image with cloud-init disabled against LXC's
//     guest with cloud-init disabled (os-running/lxc, target ≤ 1.15), and
//     the driver's cloud-init done against LXC's guest with cloud-init on
//     and no datasource (cloudinit/lxc, target ≤ 1.0); peer lxc polls
//     the guest to learn the end of its boot, peer lxc-console follows
//     the boot report on LXC's console log (os-running/lxc-console,
//     cloudinit/lxc-console: the stricter baseline);
//   - an application instance (busybox, a shell that exits on SIGTERM):
//     its Spawn (to a started process) and its power-off.
//
// The boots to cloud-init done are also split at the guest's init, on the
// monotonic clock guest and host share (bootTimeline): before the init
// started, the guest's own boot, and after its end; cloudinit-guest/lxc
// compares the driver's guests' own boots with LXC's, which leaves out
// what the engine and LXC each take to start the init.
//
// The driver's instance and the peers boot one after another, in an
// order that rotates with the iteration (whoever boots first finds a
// colder page cache). Run it at least twice: -bench OSInstance
// -benchtime 2x (targets: cloud-init done under 3 s on this machine).
func BenchmarkOSInstance(b *testing.B) {
	cli := testenv.MustHaveDocker(b)
	osImg := testenv.OSImage(b).Ref
	appImg := testenv.BusyboxImage(b)
	d := benchDriver(b, cli, testenv.UniqueName("b"))
	ctx := b.Context()
	key := sshKey(&testing.T{})
	peers := osBootPeers(cli, osImg)
	offImg := ""
	for _, p := range peers {
		if p.cloudInitOff {
			offImg = cloudInitOffImage(ctx, b, cli, osImg)
			break
		}
	}

	// One boot before the timed ones: a run's first boot reads the image
	// from disk (the kernel lane's VM starts with a cold page cache),
	// which would count against whoever boots first.
	if _, _, _, err := bootToCloudInit(ctx, cli, d, osBenchSpec("warm", osImg, key), new(bootTimeline)); err != nil {
		b.Fatal(err)
	}
	if err := d.Destroy(ctx, "warm"); err != nil {
		b.Fatal(err)
	}

	var appSpawn, appOff, osRunning, osCloudInit, osOff, osOffGuest, osCIOffRunning time.Duration
	// The cloud-init-off boot step by step (see the metrics below).
	var offPreCreate, offCreate, offStart, offPostStart, offWait time.Duration
	var offTimeline bootTimeline // the driver's boots to running, cloud-init off
	stepAt := map[string]time.Time{}
	stages := map[string]time.Duration{} // cloud-init's stages in the driver's instances
	var timeline bootTimeline            // the driver's boots to cloud-init done
	peerRunning := make([]time.Duration, len(peers))
	peerCloudInit := make([]time.Duration, len(peers))
	peerFailed := make([]error, len(peers))
	n := 0
	for i := 0; b.Loop(); i++ {
		app := hypervisor.InstanceSpec{ID: fmt.Sprintf("app%d", i), Image: appImg, Command: sleeper, MemoryMB: 256}
		t0 := time.Now()
		if _, err := d.Spawn(ctx, app); err != nil {
			b.Fatal(err)
		}
		appSpawn += time.Since(t0)
		t0 = time.Now()
		if err := d.PowerOff(ctx, app.ID, hypervisor.StopOptions{Timeout: 30 * time.Second}); err != nil {
			b.Fatal(err)
		}
		appOff += time.Since(t0)

		ours := func() {
			spec := osBenchSpec(fmt.Sprintf("os%d", i), osImg, key)
			running, cloudInit, st, err := bootToCloudInit(ctx, cli, d, spec, &timeline)
			if err != nil {
				b.Fatal(err)
			}
			osRunning += running
			osCloudInit += cloudInit
			if st.CloudInit.Datasource != "configdrive" {
				b.Fatalf("cloud-init datasource %q", st.CloudInit.Datasource)
			}
			out, err := execOutput(ctx, cli, d.containerName(spec.ID), "cat", "/run/cloud-init/status.json")
			if err != nil {
				b.Fatal(err)
			}
			if err := cloudInitStages(out, stages); err != nil {
				b.Fatal(err)
			}
			t0 = time.Now()
			if err := d.PowerOff(ctx, spec.ID, hypervisor.StopOptions{Timeout: 30 * time.Second}); err != nil {
				b.Fatal(err)
			}
			osOff += time.Since(t0)
			st, err = d.OSStatus(ctx, spec.ID)
			if err != nil {
				b.Fatal(err)
			}
			if !st.LastShutdown.Orderly {
				b.Fatalf("shutdown not orderly: %+v", st.LastShutdown)
			}
			osOffGuest += st.LastShutdown.Duration
			if err := d.Destroy(ctx, spec.ID); err != nil {
				b.Fatal(err)
			}
		}
		// The image with cloud-init disabled, to the OS running.
		oursCIOff := func() {
			spec := hypervisor.InstanceSpec{ID: fmt.Sprintf("osoff%d", i), Image: offImg, MemoryMB: 256}
			clear(stepAt)
			d.stepHook = func(step string) {
				if _, ok := stepAt[step]; !ok {
					stepAt[step] = time.Now()
				}
			}
			t0 := time.Now()
			begun, clock := monotonicNow()
			if _, err := d.Spawn(ctx, spec); err != nil {
				b.Fatal(err)
			}
			spawned := time.Now()
			if _, err := d.WaitBooted(ctx, spec.ID, hypervisor.WaitBootOptions{}); err != nil {
				b.Fatal(err)
			}
			booted := time.Now()
			end, _ := monotonicNow()
			d.stepHook = nil
			osCIOffRunning += booted.Sub(t0)
			offPreCreate += stepAt[StepCreate].Sub(t0)
			offCreate += stepAt[StepStart].Sub(stepAt[StepCreate])
			offStart += stepAt[StepAttachVIFs].Sub(stepAt[StepStart])
			offPostStart += spawned.Sub(stepAt[StepAttachVIFs])
			offWait += booted.Sub(spawned)
			if clock {
				out, err := execOutput(ctx, cli, d.containerName(spec.ID), guestShowProps...)
				if err != nil {
					b.Fatal(err)
				}
				if err := offTimeline.add(begun, end, out); err != nil {
					b.Fatal(err)
				}
			}
			if err := d.Destroy(ctx, spec.ID); err != nil {
				b.Fatal(err)
			}
		}
		// Rotate who boots first.
		runs := make([]func(), 0, len(peers)+2)
		runs = append(runs, ours)
		if offImg != "" {
			runs = append(runs, oursCIOff)
		}
		for j, p := range peers {
			runs = append(runs, func() {
				if peerFailed[j] != nil {
					return
				}
				r, c, err := p.boot(ctx, b, i, key)
				if err != nil {
					b.Logf("peer %s cannot boot the image here: %v", p.name, err)
					peerFailed[j] = err
					return
				}
				peerRunning[j] += r
				peerCloudInit[j] += c
			})
		}
		for k := range runs {
			runs[(i+k)%len(runs)]()
		}
		if err := d.Destroy(ctx, app.ID); err != nil {
			b.Fatal(err)
		}
		n++
	}
	per := func(d time.Duration) float64 { return float64(d.Milliseconds()) / float64(n) }
	b.ReportMetric(per(appSpawn), "app-spawn-ms")
	b.ReportMetric(per(osRunning), "os-spawn-to-running-ms")
	b.ReportMetric(per(osCloudInit), "os-spawn-to-cloudinit-done-ms")
	b.ReportMetric(float64(osRunning)/float64(appSpawn), "running/app-spawn")
	if offImg != "" {
		b.ReportMetric(per(osCIOffRunning), "os-ci-off-to-running-ms")
		// Where the time to running goes, with cloud-init off: the
		// driver's steps before the engine's create (validate, the
		// image), the create step (record, config drive, the engine's
		// create, the init's check), the engine's start, the post-start
		// steps, the wait for the boot report; and, at the guest's init
		// (bootTimeline), before the init started (the driver and the
		// engine), the guest's own boot, and after its end (the report
		// on its way out).
		b.ReportMetric(per(offPreCreate), "os-ci-off-pre-create-ms")
		b.ReportMetric(per(offCreate), "os-ci-off-create-ms")
		b.ReportMetric(per(offStart), "os-ci-off-start-ms")
		b.ReportMetric(per(offPostStart), "os-ci-off-post-start-ms")
		b.ReportMetric(per(offWait), "os-ci-off-wait-booted-ms")
		offTimeline.report(b, "os-ci-off")
	}
	for j, p := range peers {
		if peerFailed[j] != nil {
			continue
		}
		b.ReportMetric(per(peerRunning[j]), p.name+"-to-running-ms")
		b.ReportMetric(per(peerCloudInit[j]), p.name+"-to-cloudinit-done-ms")
		if p.offTimeline != nil {
			p.offTimeline.report(b, p.name+"-ci-off")
		}
		if p.cloudInitOff {
			b.ReportMetric(float64(osCIOffRunning)/float64(peerRunning[j]), "os-running/"+p.name)
		} else {
			b.ReportMetric(float64(osRunning)/float64(peerRunning[j]), "running/"+p.name)
		}
		b.ReportMetric(float64(osCloudInit)/float64(peerCloudInit[j]), "cloudinit/"+p.name)
		for stage, d := range p.stages {
			b.ReportMetric(per(d), p.name+"-cloudinit-"+stage+"-ms")
		}
	}
	for stage, d := range stages {
		b.ReportMetric(per(d), "cloudinit-"+stage+"-ms")
	}
	// The boots to cloud-init done at the guest's init: the driver's and
	// each peer's, and the guests' own boots compared (cloudinit-guest/<name>).
	timeline.report(b, "cloudinit")
	for j, p := range peers {
		if peerFailed[j] == nil && p.timeline != nil && p.timeline.n > 0 && timeline.n > 0 {
			p.timeline.report(b, p.name+"-cloudinit")
			b.ReportMetric(float64(timeline.guest)/float64(timeline.n)/(float64(p.timeline.guest)/float64(p.timeline.n)), "cloudinit-guest/"+p.name)
		}
	}
	b.ReportMetric(per(appOff), "app-poweroff-ms")
	b.ReportMetric(per(osOff), "os-poweroff-ms")
	b.ReportMetric(per(osOffGuest), "os-shutdown-ms")
	b.ReportMetric(float64(osOff)/float64(appOff), "poweroff/app-poweroff")
}

// privilegedPeer boots the image in a container of the same engine run
// --privileged, which needs no help with its cgroups on any host: the
// init as PID 1, a private cgroup namespace on cgroup v2, tmpfs on /run,
// the halt signal, the same memory limit, no network, and a config drive
// made by package configdrive bound where cloud-init looks for one.
func privilegedPeer(cli *client.Client, image string) osBootPeer {
	boot := func(ctx context.Context, b *testing.B, i int, key string) (running, cloudInit time.Duration, err error) {
		b.Helper()
		id := fmt.Sprintf("priv%d", i)
		tree, err := configdrive.Build(configdrive.Instance{
			UUID: id, Hostname: id, UserData: osBenchUserData,
			Keys: []configdrive.Key{{Name: "k", Data: key}},
		})
		if err != nil {
			return 0, 0, err
		}
		dir := filepath.Join(b.TempDir(), "configdrive-"+id)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return 0, 0, err
		}
		if err := configdrive.Write(dir, tree); err != nil {
			return 0, 0, err
		}
		hc := &container.HostConfig{
			Privileged:  true,
			NetworkMode: "none",
			Resources:   container.Resources{Memory: 256 << 20, MemorySwap: 256 << 20},
			Tmpfs: map[string]string{
				"/run":      "rw,nosuid,nodev,mode=755",
				"/run/lock": "rw,nosuid,nodev,noexec,mode=1777",
			},
			Mounts: []mount.Mount{{Type: mount.TypeBind, Source: dir, Target: configdrive.SeedDir, ReadOnly: true}},
		}
		if testenv.CgroupV2() {
			hc.CgroupnsMode = container.CgroupnsModePrivate
		}
		t0 := time.Now()
		c, err := cli.ContainerCreate(ctx, client.ContainerCreateOptions{
			Name: testenv.UniqueName("dv-bench-privileged-"),
			Config: &container.Config{
				Image: image, Hostname: id, Entrypoint: []string{defaultInit}, Tty: true,
				Env: []string{"container=docker"}, StopSignal: haltSignal,
			},
			HostConfig: hc,
		})
		if err != nil {
			return 0, 0, err
		}
		defer func() {
			if _, err := cli.ContainerRemove(context.WithoutCancel(ctx), c.ID, client.ContainerRemoveOptions{Force: true}); err != nil {
				b.Errorf("remove the privileged peer: %v", err)
			}
		}()
		if _, err := cli.ContainerStart(ctx, c.ID, client.ContainerStartOptions{}); err != nil {
			return 0, 0, fmt.Errorf("start --privileged: %w", err)
		}
		if err := waitContainerBooted(ctx, cli, c.ID, false); err != nil {
			return 0, 0, err
		}
		running = time.Since(t0)
		if err := waitContainerBooted(ctx, cli, c.ID, true); err != nil {
			return 0, 0, err
		}
		return running, time.Since(t0), nil
	}
	return osBootPeer{name: "privileged", boot: boot}
}

// waitContainerBooted polls container cid as WaitBooted polls an OS
// instance (the same script, with the same pauses) until its OS has booted,
// and with cloudInit until cloud-init has finished.
func waitContainerBooted(ctx context.Context, cli *client.Client, cid string, cloudInit bool) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	for {
		asked := time.Now()
		out, err := execOutput(ctx, cli, cid, "/bin/sh", "-c", osStatusScript)
		if err == nil {
			var st hypervisor.OSStatus
			parseOSStatus(out, &st)
			if done, err := bootDone(st, hypervisor.WaitBootOptions{CloudInit: cloudInit}); done {
				return err
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("container %s did not boot: %w (last: %v)", cid, ctx.Err(), err)
		case <-time.After(pollPause(time.Since(asked))):
		}
	}
}

// execOutput runs a command in a running container through the engine
// and returns its output.
func execOutput(ctx context.Context, cli *client.Client, cid string, args ...string) (string, error) {
	ex, err := cli.ExecCreate(ctx, cid, client.ExecCreateOptions{Cmd: args, AttachStdout: true, AttachStderr: true, TTY: true})
	if err != nil {
		return "", err
	}
	att, err := cli.ExecAttach(ctx, ex.ID, client.ExecAttachOptions{TTY: true})
	if err != nil {
		return "", err
	}
	defer att.Close()
	var out bytes.Buffer
	if _, err := io.Copy(&out, att.Reader); err != nil {
		return "", err
	}
	return string(bytes.ReplaceAll(out.Bytes(), []byte("\r\n"), []byte("\n"))), nil
}

// cloudInitStages adds the time each of cloud-init's stages took to
// sum[stage], read from cloud-init's /run/cloud-init/status.json
// (each stage's start and finish, in seconds since the epoch). A stage
// that did not finish is an error.
func cloudInitStages(statusJSON string, sum map[string]time.Duration) error {
	var st struct {
		V1 map[string]json.RawMessage `json:"v1"`
	}
	if err := json.Unmarshal([]byte(statusJSON), &st); err != nil {
		return fmt.Errorf("cloud-init status: %w", err)
	}
	n := 0
	for stage, raw := range st.V1 {
		var t struct {
			Start    *float64 `json:"start"`
			Finished *float64 `json:"finished"`
		}
		if json.Unmarshal(raw, &t) != nil || t.Start == nil {
			continue // not a stage (datasource, stage…), or one that never ran
		}
		if t.Finished == nil {
			return fmt.Errorf("cloud-init stage %s did not finish: %s", stage, raw)
		}
		sum[stage] += time.Duration((*t.Finished - *t.Start) * float64(time.Second))
		n++
	}
	if n == 0 {
		return fmt.Errorf("no cloud-init stage in %q", statusJSON)
	}
	return nil
}
