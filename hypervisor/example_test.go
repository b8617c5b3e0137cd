package hypervisor_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/dockervisor/dockervisor/hypervisor"
	"github.com/dockervisor/dockervisor/hypervisor/hypervisortest"
)

// A compute agent spawns an instance, powers it off and on again. The Fake
// stands in for a real backend such as hypervisor/docker.
func Example() {
	ctx := context.Background()
	var d hypervisor.Driver = hypervisortest.NewFake(hypervisortest.WithImages("busybox:latest"))
	defer d.Close()

	inst, err := d.Spawn(ctx, hypervisor.InstanceSpec{
		ID:       "vm-1",
		Name:     "web",
		Image:    "busybox:latest",
		Command:  []string{"sleep", "3600"},
		VCPUs:    2,
		MemoryMB: 512,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(inst.ID, inst.Name, inst.State)

	if err := d.PowerOff(ctx, "vm-1", hypervisor.StopOptions{}); err != nil {
		fmt.Println(err)
		return
	}
	info, _ := d.Info(ctx, "vm-1")
	fmt.Println("after power-off:", info.State, "pid", info.PID)

	// Powering off again does nothing: the instance is shut down already.
	fmt.Println("power-off again:", d.PowerOff(ctx, "vm-1", hypervisor.StopOptions{}))

	if err := d.PowerOn(ctx, "vm-1"); err != nil {
		fmt.Println(err)
		return
	}
	info, _ = d.Info(ctx, "vm-1")
	fmt.Println("after power-on:", info.State, info.VCPUs, "vCPUs", info.MaxMemoryBytes>>20, "MiB")

	// Output:
	// vm-1 web running
	// after power-off: shutdown pid 0
	// power-off again: <nil>
	// after power-on: running 2 vCPUs 512 MiB
}

// An operation that the state table does not allow fails with an error
// wrapping ErrInvalidState; the *StateError in its chain says why.
func Example_invalidState() {
	ctx := context.Background()
	d := hypervisortest.NewFake(hypervisortest.WithImages("busybox:latest"))
	defer d.Close()
	if _, err := d.Spawn(ctx, hypervisor.InstanceSpec{ID: "vm-1", Image: "busybox:latest"}); err != nil {
		fmt.Println(err)
		return
	}
	_ = d.PowerOff(ctx, "vm-1", hypervisor.StopOptions{})

	err := d.Pause(ctx, "vm-1")
	fmt.Println(errors.Is(err, hypervisor.ErrInvalidState))
	if se, ok := errors.AsType[*hypervisor.StateError](err); ok {
		fmt.Println("current:", se.Current, "valid in:", se.Want)
	}
	if oe, ok := errors.AsType[*hypervisor.OpError](err); ok {
		fmt.Println("op:", oe.Op, "id:", oe.ID)
	}
	fmt.Println(err)

	// Output:
	// true
	// current: shutdown valid in: [running]
	// op: pause id: vm-1
	// hypervisor: pause vm-1: cannot pause instance vm-1 in state shutdown (valid in: running)
}

// Errors are classified with errors.Is: a missing instance, a taken ID, a
// rejected spec, an unknown image. Destroy of a missing instance is nil.
func Example_errors() {
	ctx := context.Background()
	d := hypervisortest.NewFake(hypervisortest.WithImages("busybox:latest"))
	defer d.Close()

	_, err := d.Info(ctx, "nope")
	fmt.Println("missing:", errors.Is(err, hypervisor.ErrNotFound))

	spec := hypervisor.InstanceSpec{ID: "vm-1", Image: "busybox:latest"}
	_, _ = d.Spawn(ctx, spec)
	_, err = d.Spawn(ctx, spec)
	fmt.Println("taken:", errors.Is(err, hypervisor.ErrAlreadyExists))

	_, err = d.Spawn(ctx, hypervisor.InstanceSpec{ID: "vm/2", Image: "busybox:latest"})
	fmt.Println("bad ID:", errors.Is(err, hypervisor.ErrInvalidArgument))

	_, err = d.Spawn(ctx, hypervisor.InstanceSpec{ID: "vm-3", Image: "alpine:latest"})
	fmt.Println("unknown image:", errors.Is(err, hypervisor.ErrImageNotFound))

	fmt.Println("destroy twice:", d.Destroy(ctx, "vm-1"), d.Destroy(ctx, "vm-1"))

	// Output:
	// missing: true
	// taken: true
	// bad ID: true
	// unknown image: true
	// destroy twice: <nil> <nil>
}

// Events streams lifecycle events until its context ends.
func Example_events() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	d := hypervisortest.NewFake(hypervisortest.WithImages("busybox:latest"))
	defer d.Close()

	events, _ := d.Events(ctx)
	_, _ = d.Spawn(ctx, hypervisor.InstanceSpec{ID: "vm-1", Image: "busybox:latest"})
	_ = d.Pause(ctx, "vm-1")
	_ = d.Destroy(ctx, "vm-1")

	for ev := range events {
		fmt.Println(ev.ID, ev.Type)
		if ev.Type == hypervisor.EventDestroyed {
			cancel()
		}
	}

	// Output:
	// vm-1 started
	// vm-1 paused
	// vm-1 stopped
	// vm-1 destroyed
}
