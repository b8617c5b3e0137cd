// Command lab is the dockervisor demo: it drives a real Docker engine like
// a hypervisor. It builds a busybox image, keeps it as a `docker save`
// tarball in a local-directory image store, spawns two instances from the
// store (the image is fetched into the engine on the first spawn), shows
// host resources before and after, shows instance info and statistics,
// pauses and unpauses one, reboots both, prints console output and
// lifecycle events. Then it gives instances networks: two on a Linux bridge
// and two on a private Open vSwitch ping each other (also after a hard
// reboot), a security group admits one TCP port and drops another, and a
// floating IP is reached from an "external" namespace. It destroys
// everything it made, even on failure.
//
// Run it as root on a machine where scripts/setup.sh has run.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/moby/moby/client"

	"github.com/dockervisor/dockervisor/hypervisor"
	"github.com/dockervisor/dockervisor/hypervisor/docker"
	"github.com/dockervisor/dockervisor/image"
	"github.com/dockervisor/dockervisor/image/busybox"
	"github.com/dockervisor/dockervisor/image/engine"
	"github.com/dockervisor/dockervisor/image/localdir"
)

func main() {
	log.SetFlags(0)
	log.SetPrefix("lab: ")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx); err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context) (err error) {
	cli, err := client.New(client.FromEnv)
	if err != nil {
		return err
	}
	defer cli.Close()

	stateDir, err := os.MkdirTemp("", "dockervisor-lab-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(stateDir)

	// The image store: a local directory holding `docker save` tarballs.
	store, err := localdir.New(filepath.Join(stateDir, "images"))
	if err != nil {
		return err
	}
	imageID, err := buildStoreImage(ctx, cli, store)
	if err != nil {
		return err
	}
	defer func() {
		// Spawn cached the store image in the engine; remove the cache.
		_, rerr := cli.ImageRemove(context.WithoutCancel(ctx), engine.TagFor(imageID), client.ImageRemoveOptions{Force: true})
		err = errors.Join(err, rerr)
	}()

	drv, err := docker.New(
		docker.WithImageStore(store),
		docker.WithStateDir(filepath.Join(stateDir, "driver")),
		docker.WithLabelPrefix("io.dockervisor.lab."),
		docker.WithNamePrefix("dockervisor-lab-"),
		docker.WithStopTimeout(3*time.Second),
	)
	if err != nil {
		return err
	}
	defer drv.Close()

	// Lifecycle events, printed as they come.
	evctx, stopEvents := context.WithCancel(ctx)
	var wg sync.WaitGroup
	evc, errc := drv.Events(evctx)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ev := range evc {
			fmt.Printf("    event: %-9s %s %s\n", ev.Type, ev.ID, ev.Cause)
		}
		if err := <-errc; err != nil {
			fmt.Printf("    event stream: %v\n", err)
		}
	}()
	defer func() { stopEvents(); wg.Wait() }()

	guest := func(name string) []string {
		// A guest "init": logs a heartbeat, exits cleanly on SIGTERM.
		return []string{"sh", "-c", fmt.Sprintf(`trap 'echo %[1]s: shutting down; exit 0' TERM; echo %[1]s: booted on $(hostname); while :; do sleep 1 & wait; done`, name)}
	}
	specs := []hypervisor.InstanceSpec{
		{ID: "web-1", Name: "web-1", Image: imageID, Command: guest("web-1"), VCPUs: 2, MemoryMB: 128, Metadata: map[string]string{"role": "web"}},
		{ID: "db-1", Name: "db-1", Image: imageID, Command: guest("db-1"), VCPUs: 1, MemoryMB: 256, HardCPULimit: true, Metadata: map[string]string{"role": "db"}},
	}
	defer func() {
		for _, s := range specs {
			err = errors.Join(err, drv.Destroy(context.WithoutCancel(ctx), s.ID))
		}
	}()
	if err := showHost(ctx, drv, "host resources before spawning"); err != nil {
		return err
	}
	for _, s := range specs {
		step("spawn %s (%d vCPU, %d MiB) from store image %s", s.ID, s.VCPUs, s.MemoryMB, s.Image)
		t0 := time.Now()
		if _, err := drv.Spawn(ctx, s); err != nil {
			return err
		}
		fmt.Printf("    spawned in %s\n", time.Since(t0).Round(time.Millisecond))
	}
	if err := showHost(ctx, drv, "host resources after spawning"); err != nil {
		return err
	}
	if err := showInfo(ctx, drv); err != nil {
		return err
	}
	if err := showStats(ctx, drv); err != nil {
		return err
	}

	step("pause web-1")
	if err := drv.Pause(ctx, "web-1"); err != nil {
		return err
	}
	if err := showInfo(ctx, drv); err != nil {
		return err
	}
	step("power on a paused instance is refused")
	var se *hypervisor.StateError
	if err := drv.PowerOn(ctx, "web-1"); errors.As(err, &se) {
		fmt.Printf("    %v\n", err)
	} else {
		return fmt.Errorf("power on of a paused instance: got %v, want a state error", err)
	}
	step("unpause web-1")
	if err := drv.Unpause(ctx, "web-1"); err != nil {
		return err
	}

	step("soft reboot db-1, hard reboot web-1")
	if err := drv.Reboot(ctx, "db-1", hypervisor.RebootOptions{}); err != nil {
		return err
	}
	if err := drv.Reboot(ctx, "web-1", hypervisor.RebootOptions{Hard: true}); err != nil {
		return err
	}
	time.Sleep(1500 * time.Millisecond) // let the guests log a little
	if err := showInfo(ctx, drv); err != nil {
		return err
	}

	for _, id := range []string{"db-1", "web-1"} {
		step("console output of %s (last 5 lines)", id)
		out, err := drv.ConsoleOutput(ctx, id, hypervisor.ConsoleOptions{TailLines: 5})
		if err != nil {
			return err
		}
		for _, l := range strings.Split(strings.TrimRight(string(out), "\n"), "\n") {
			fmt.Printf("    | %s\n", l)
		}
	}

	if err := demoSnapshot(ctx, cli, drv, store, imageID); err != nil {
		return err
	}

	for _, s := range specs {
		step("destroy %s", s.ID)
		if err := drv.Destroy(ctx, s.ID); err != nil {
			return err
		}
	}
	list, err := drv.List(ctx, hypervisor.ListOptions{})
	if err != nil {
		return err
	}
	step("instances left: %d", len(list))
	time.Sleep(300 * time.Millisecond) // let the last events arrive

	return networkDemo(ctx, cli, store, imageID, stateDir)
}

// buildStoreImage makes the demo image and stores it: the busybox root file
// system is imported into the engine, saved as a `docker save` tarball
// into the store, and removed from the engine again, so that the first
// spawn has to fetch it from the store.
func buildStoreImage(ctx context.Context, cli *client.Client, store image.Store) (string, error) {
	const ref = "dockervisor-lab/busybox:build"
	step("build image %s and save it into the local store", ref)
	if err := busybox.Import(ctx, cli, ref); err != nil {
		return "", err
	}
	defer cli.ImageRemove(context.WithoutCancel(ctx), ref, client.ImageRemoveOptions{Force: true})
	rc, err := engine.Save(ctx, cli, ref)
	if err != nil {
		return "", err
	}
	defer rc.Close()
	meta, err := store.Create(ctx, image.Metadata{
		ID: "busybox-lab", Name: "busybox", ContainerFormat: image.ContainerFormatDocker, DiskFormat: image.DiskFormatRaw,
		Properties: map[string]string{"os": "busybox"},
	}, rc)
	if err != nil {
		return "", err
	}
	fmt.Printf("    store image %s: %d bytes, sha256 %s…\n", meta.ID, meta.Size, meta.SHA256[:16])
	return meta.ID, nil
}

func showHost(ctx context.Context, drv hypervisor.Driver, title string) error {
	step("%s", title)
	h, err := drv.HostResources(ctx)
	if err != nil {
		return err
	}
	nodes, err := drv.AvailableNodes(ctx)
	if err != nil {
		return err
	}
	fmt.Printf("    node %s (%s %s, API %s), up %s, load %.2f\n", strings.Join(nodes, ","), h.HypervisorType, h.HypervisorVersion, h.APIVersion, h.Uptime.Round(time.Second), h.LoadAverage[0])
	fmt.Printf("    vCPUs %d used of %d, CPU busy %.1f%%\n", h.VCPUsUsed, h.VCPUs, h.CPUUtilization)
	fmt.Printf("    memory %d MiB claimed by instances; host %d MiB used, %d MiB free of %d MiB\n", h.MemoryClaimedMB, h.MemoryUsedMB, h.MemoryFreeMB, h.MemoryMB)
	fmt.Printf("    disk %d GiB used of %d GiB; instances by state %v\n", h.DiskUsedGB, h.DiskGB, h.Instances)
	return nil
}

func showStats(ctx context.Context, drv hypervisor.Driver) error {
	list, err := drv.List(ctx, hypervisor.ListOptions{})
	if err != nil {
		return err
	}
	for _, inst := range list {
		s, err := drv.InstanceStats(ctx, inst.ID)
		if err != nil {
			return err
		}
		fmt.Printf("    stats %s: cpu %s (%.1f%%), memory %.1f of %d MiB", s.ID, s.CPUTime.Round(time.Millisecond), s.CPUPercent, float64(s.MemoryBytes)/(1<<20), s.MemoryLimitBytes>>20)
		for _, i := range s.Interfaces {
			fmt.Printf(", %s rx %d tx %d", i.Device, i.RxBytes, i.TxBytes)
		}
		fmt.Println()
	}
	return nil
}

func step(format string, args ...any) { fmt.Printf("==> "+format+"\n", args...) }

func showInfo(ctx context.Context, drv hypervisor.Driver) error {
	list, err := drv.List(ctx, hypervisor.ListOptions{})
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "    ID\tSTATE\tPID\tVCPUS\tMEM USED\tMEM MAX\tCPU TIME")
	for _, inst := range list {
		info, err := drv.Info(ctx, inst.ID)
		if err != nil {
			return err
		}
		fmt.Fprintf(tw, "    %s\t%s\t%d\t%d\t%.1f MiB\t%d MiB\t%s\n", info.ID, info.State, info.PID, info.VCPUs,
			float64(info.MemoryBytes)/(1<<20), info.MaxMemoryBytes>>20, info.CPUTime.Round(time.Millisecond))
	}
	return tw.Flush()
}

// demoSnapshot writes a file inside an instance, snapshots the instance
// into the store, boots a second instance from the snapshot and shows the
// file there, then cleans up.
func demoSnapshot(ctx context.Context, cli *client.Client, drv *docker.Driver, store image.Store, imageID string) (err error) {
	note := "written before the snapshot at " + time.Now().Format(time.TimeOnly)
	src := hypervisor.InstanceSpec{ID: "snap-src", Image: imageID, MemoryMB: 64,
		Command: []string{"sh", "-c", fmt.Sprintf(`echo '%s' > /note; echo saved; trap 'exit 0' TERM; while :; do sleep 1 & wait; done`, note)}}
	boot := hypervisor.InstanceSpec{ID: "snap-boot", MemoryMB: 64,
		Command: []string{"sh", "-c", `echo "found: $(cat /note)"; trap 'exit 0' TERM; while :; do sleep 1 & wait; done`}}
	defer func() {
		for _, id := range []string{boot.ID, src.ID} {
			err = errors.Join(err, drv.Destroy(context.WithoutCancel(ctx), id))
		}
	}()
	step("spawn %s, which writes /note", src.ID)
	if _, err := drv.Spawn(ctx, src); err != nil {
		return err
	}
	if err := waitConsole(ctx, drv, src.ID, "saved"); err != nil {
		return err
	}
	step("snapshot %s into the store", src.ID)
	t0 := time.Now()
	meta, err := drv.Snapshot(ctx, src.ID, hypervisor.SnapshotRequest{Name: "Lab snapshot – " + src.ID})
	if err != nil {
		return err
	}
	defer func() {
		_, rerr := cli.ImageRemove(context.WithoutCancel(ctx), engine.TagFor(meta.ID), client.ImageRemoveOptions{Force: true})
		err = errors.Join(err, rerr, store.Delete(context.WithoutCancel(ctx), meta.ID))
	}()
	fmt.Printf("    %q: %s, %d bytes, sha256 %.12s…, in %s\n", meta.Name, meta.ID, meta.Size, meta.SHA256, time.Since(t0).Round(time.Millisecond))
	fmt.Printf("    properties: %v\n", meta.Properties)
	step("boot %s from the snapshot", boot.ID)
	boot.Image = meta.ID
	if _, err := drv.Spawn(ctx, boot); err != nil {
		return err
	}
	if err := waitConsole(ctx, drv, boot.ID, "found: "+note); err != nil {
		return err
	}
	fmt.Printf("    | found: %s\n", note)
	return nil
}

// waitConsole waits until the console of id holds the line want.
func waitConsole(ctx context.Context, drv hypervisor.Driver, id, want string) error {
	deadline := time.Now().Add(15 * time.Second)
	for {
		out, err := drv.ConsoleOutput(ctx, id, hypervisor.ConsoleOptions{})
		if err != nil {
			return err
		}
		if strings.Contains(string(out), want+"\n") {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("console of %s: %q, want the line %q", id, out, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
