package ovsrun

import (
	"context"

	"github.com/dockervisor/dockervisor/internal/kmod"
)

// PickDatapath returns DatapathSystem when the kernel has the Open vSwitch
// module, loading it when it is installed and not loaded (as the
// distribution's openvswitch-switch service does before it starts
// ovs-vswitchd), and DatapathNetdev when the kernel has none. When the
// module is installed but does not load, it returns DatapathNetdev and the
// error, so that a caller may fall back or fail. Pass the result as
// [Options.Datapath] to use the kernel datapath wherever there is one.
func PickDatapath(ctx context.Context) (string, error) {
	if !kmod.Present("openvswitch") {
		return DatapathNetdev, nil
	}
	if err := kmod.Load(ctx, "openvswitch"); err != nil {
		return DatapathNetdev, err
	}
	return DatapathSystem, nil
}
