package hypervisortest_test

import (
	"context"
	"fmt"
	"os"

	"github.com/dockervisor/dockervisor/configdrive"
	"github.com/dockervisor/dockervisor/hypervisor"
	"github.com/dockervisor/dockervisor/hypervisor/hypervisortest"
)

func ExampleFake_Exec() {
	ctx := context.Background()
	f := hypervisortest.NewFake(hypervisortest.WithImages("busybox:latest"))
	defer f.Close()
	_, err := f.Spawn(ctx, hypervisor.InstanceSpec{
		ID: "vm1", Image: "busybox:latest",
		Metadata: map[string]string{"role": "web"},
		UserData: []byte("#cloud-config\n"),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	res, err := f.Exec(ctx, "vm1", hypervisor.ExecSpec{
		Args:   []string{"cat", configdrive.SeedDir + "/openstack/latest/user_data"},
		Stdout: os.Stdout,
	})
	fmt.Println(res.ExitCode, err)
	_, err = f.Exec(ctx, "vm1", hypervisor.ExecSpec{Args: []string{"/no/such/binary"}})
	fmt.Println(err)
	// Output:
	// #cloud-config
	// 0 <nil>
	// hypervisor: exec vm1: command not found in instance: "/no/such/binary"
}
