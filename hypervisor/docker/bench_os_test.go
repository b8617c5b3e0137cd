package docker

import (
	"fmt"
	"testing"
	"time"

	"github.com/dockervisor/dockervisor/hypervisor"
	"github.com/dockervisor/dockervisor/internal/testenv"
)

// BenchmarkOSInstance measures an OS instance (the shared Debian image with
// systemd, cloud-init and openssh-server) from Spawn to `systemctl
// is-system-running` = running, from Spawn to cloud-init done (user-data
// and a key on the config drive), and its orderly power-off; the baseline,
// in the same iterations, is an application instance (busybox, a shell
// that exits on SIGTERM): its Spawn (to a started process) and its
// power-off. Run it once: -bench OSInstance -benchtime 1x (targets: cloud-init
// done under 3 s).
func BenchmarkOSInstance(b *testing.B) {
	cli := testenv.MustHaveDocker(b)
	osImg := testenv.OSImage(b).Ref
	appImg := testenv.BusyboxImage(b)
	d := benchDriver(b, cli, testenv.UniqueName("b"))
	ctx := b.Context()
	key := sshKey(&testing.T{})

	var appSpawn, appOff, osRunning, osCloudInit, osOff, osOffGuest time.Duration
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

		spec := hypervisor.InstanceSpec{
			ID: fmt.Sprintf("os%d", i), Image: osImg, MemoryMB: 256,
			UserData: []byte("#cloud-config\nlocale: C.UTF-8\nruncmd:\n  - [ touch, /run/user-data-ran ]\n"),
			SSHKeys:  []hypervisor.SSHKey{{Name: "k", Data: key}},
		}
		t0 = time.Now()
		if _, err := d.Spawn(ctx, spec); err != nil {
			b.Fatal(err)
		}
		if _, err := d.WaitBooted(ctx, spec.ID, hypervisor.WaitBootOptions{}); err != nil {
			b.Fatal(err)
		}
		osRunning += time.Since(t0)
		st, err := d.WaitBooted(ctx, spec.ID, hypervisor.WaitBootOptions{CloudInit: true})
		if err != nil {
			b.Fatal(err)
		}
		osCloudInit += time.Since(t0)
		if st.CloudInit.Datasource != "configdrive" {
			b.Fatalf("cloud-init datasource %q", st.CloudInit.Datasource)
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
		for _, id := range []string{app.ID, spec.ID} {
			if err := d.Destroy(ctx, id); err != nil {
				b.Fatal(err)
			}
		}
		n++
	}
	per := func(d time.Duration) float64 { return float64(d.Milliseconds()) / float64(n) }
	b.ReportMetric(per(appSpawn), "app-spawn-ms")
	b.ReportMetric(per(osRunning), "os-spawn-to-running-ms")
	b.ReportMetric(per(osCloudInit), "os-spawn-to-cloudinit-done-ms")
	b.ReportMetric(float64(osRunning)/float64(appSpawn), "running/app-spawn")
	b.ReportMetric(per(appOff), "app-poweroff-ms")
	b.ReportMetric(per(osOff), "os-poweroff-ms")
	b.ReportMetric(per(osOffGuest), "os-shutdown-ms")
	b.ReportMetric(float64(osOff)/float64(appOff), "poweroff/app-poweroff")
}
