package osimage_test

import (
	"context"
	"fmt"
	"os"

	"github.com/moby/moby/client"

	"github.com/dockervisor/dockervisor/image/osimage"
)

// Build the default image (Debian bookworm with systemd, cloud-init and
// openssh-server) on the local engine; a second call finds it.
func ExampleBuild() {
	cli, err := client.New(client.FromEnv)
	if err != nil {
		panic(err)
	}
	defer cli.Close()
	res, err := osimage.Build(context.Background(), cli, osimage.Options{Log: os.Stderr})
	if err != nil {
		panic(err)
	}
	// Spawn it with hypervisor.InstanceSpec{Image: res.Ref, ...}: its
	// io.dockervisor.os label makes it an OS instance.
	fmt.Println(res.Ref, res.Cached)
}
