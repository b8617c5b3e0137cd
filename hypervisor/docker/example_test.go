package docker_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/dockervisor/dockervisor/hypervisor"
	"github.com/dockervisor/dockervisor/hypervisor/docker"
)

// A compute agent spawns an instance and drives it through its lifecycle.
func Example() {
	ctx := context.Background()
	drv, err := docker.New(
		docker.WithStateDir("/var/lib/my-agent/instances"),
		docker.WithStopTimeout(30*time.Second),
	)
	if err != nil {
		log.Fatal(err)
	}
	defer drv.Close()

	inst, err := drv.Spawn(ctx, hypervisor.InstanceSpec{
		ID:       "3f0c9a52-6f0e-4a37-9a8e-2f1f5b7c1d10",
		Name:     "web-1",
		Image:    "my-images/web:1",
		VCPUs:    2,
		MemoryMB: 512,
	})
	if errors.Is(err, hypervisor.ErrAlreadyExists) {
		log.Print("already spawned")
	} else if err != nil {
		log.Fatal(err)
	}
	fmt.Println(inst.State)

	if err := drv.Reboot(ctx, inst.ID, hypervisor.RebootOptions{Hard: true}); err != nil {
		log.Fatal(err)
	}
	info, err := drv.Info(ctx, inst.ID)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(info.State, info.CPUTime, info.MemoryBytes)
}

// A remote engine over TCP with mutual TLS; the server certificate is
// verified against the given CA.
func ExampleWithTLS() {
	drv, err := docker.New(
		docker.WithDockerHost("tcp://compute-7.example:2376"),
		docker.WithTLS(docker.TLSConfig{CAFile: "ca.pem", CertFile: "cert.pem", KeyFile: "key.pem"}),
	)
	if err != nil {
		log.Fatal(err)
	}
	defer drv.Close()
}

// Lifecycle events of the driver's instances, until the context ends.
func ExampleDriver_Events() {
	drv, err := docker.New()
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	evc, errc := drv.Events(ctx)
	for ev := range evc {
		fmt.Println(ev.Time, ev.ID, ev.Type)
	}
	if err := <-errc; err != nil {
		log.Print(err)
	}
}
