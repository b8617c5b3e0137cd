package docker_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/dockervisor/dockervisor/hypervisor"
	"github.com/dockervisor/dockervisor/hypervisor/docker"
	"github.com/dockervisor/dockervisor/image/osimage"
)

// An OS instance boots Debian with systemd, runs its user-data with
// cloud-init from the config drive, and shuts down in order.
func ExampleDriver_WaitBooted() {
	ctx := context.Background()
	drv, err := docker.New(docker.WithStateDir("/var/lib/my-agent/instances"))
	if err != nil {
		log.Fatal(err)
	}
	defer drv.Close()

	ref, err := osimage.Options{}.Ref() // built before with osimage.Build
	if err != nil {
		log.Fatal(err)
	}
	_, err = drv.Spawn(ctx, hypervisor.InstanceSpec{
		ID:       "vm-1",
		Image:    ref, // its io.dockervisor.os label makes an OS instance
		VCPUs:    1,
		MemoryMB: 512,
		SSHKeys:  []hypervisor.SSHKey{{Name: "me", Data: "ssh-ed25519 AAAA... me@laptop"}},
		UserData: []byte("#cloud-config\nruncmd:\n  - [ sh, -c, 'echo hello > /etc/motd' ]\n"),
	})
	if err != nil {
		log.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	st, err := drv.WaitBooted(wctx, "vm-1", hypervisor.WaitBootOptions{CloudInit: true})
	switch {
	case errors.Is(err, hypervisor.ErrDegraded):
		log.Printf("booted with failed units: %v", st.FailedUnits)
	case errors.Is(err, hypervisor.ErrCloudInit):
		log.Printf("user-data failed: %v", st.CloudInit.Errors)
	case err != nil:
		log.Fatal(err)
	}
	fmt.Println(st.System, st.CloudInit.Status, st.CloudInit.Datasource)

	// An orderly shutdown: systemd's halt, killed after 30 s.
	if err := drv.PowerOff(ctx, "vm-1", hypervisor.StopOptions{Timeout: 30 * time.Second}); err != nil {
		log.Fatal(err)
	}
	st, _ = drv.OSStatus(ctx, "vm-1")
	fmt.Println(st.LastShutdown.Orderly)
}
