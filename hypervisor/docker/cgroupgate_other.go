//go:build !linux

package docker

import (
	"errors"
	"fmt"

	"github.com/dockervisor/dockervisor/hypervisor"
)

// openCgroupGate fails: only Linux has mount namespaces to enter.
func openCgroupGate(int, string) error {
	return fmt.Errorf("%w: the cgroup gate needs Linux", hypervisor.ErrNotSupported)
}

// checkNsdelegate fails: a local engine with cgroup v2 runs on Linux, and
// so must the driver that opens its instances' cgroup gates.
func checkNsdelegate() error {
	return errors.New("the driver does not run on Linux and cannot open an instance's cgroup gate")
}
