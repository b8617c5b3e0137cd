package hypervisortest_test

import (
	"context"
	"fmt"

	"github.com/dockervisor/dockervisor/hypervisor"
	"github.com/dockervisor/dockervisor/hypervisor/hypervisortest"
)

// A test of a compute agent drives a Fake, and simulates what a guest does:
// console output and a crash.
func ExampleFake() {
	ctx := context.Background()
	f := hypervisortest.NewFake(hypervisortest.WithImages("busybox:latest"))
	defer f.Close()

	_, _ = f.Spawn(ctx, hypervisor.InstanceSpec{ID: "vm-1", Image: "busybox:latest", MemoryMB: 128})
	_ = f.WriteConsole("vm-1", []byte("booting\nready\n"))
	out, _ := f.ConsoleOutput(ctx, "vm-1", hypervisor.ConsoleOptions{TailLines: 1})
	fmt.Printf("console: %q\n", out)

	_ = f.Crash("vm-1", 139)
	info, _ := f.Info(ctx, "vm-1")
	fmt.Println(info.State, info.ExitCode)

	_ = f.PowerOn(ctx, "vm-1")
	info, _ = f.Info(ctx, "vm-1")
	fmt.Println(info.State, info.MaxMemoryBytes>>20, "MiB")

	// Output:
	// console: "ready\n"
	// crashed 139
	// running 128 MiB
}
