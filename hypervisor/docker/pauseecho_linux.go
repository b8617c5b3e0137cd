package docker

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// cgroupRoot is where the host mounts its cgroup file systems.
const cgroupRoot = "/sys/fs/cgroup"

// freezerState reports whether the kernel says that the cgroup of
// process pid (a container's first process, on this machine) is frozen
// or freezing: the cgroup v1 freezer's freezer.state is not THAWED, or
// cgroup v2's cgroup.freeze is 1. known is false when it cannot tell.
func freezerState(pid int) (frozen, known bool) {
	if pid <= 0 {
		return false, false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		return false, false
	}
	unified := ""
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		if slices.Contains(strings.Split(parts[1], ","), "freezer") {
			st, err := os.ReadFile(filepath.Join(cgroupRoot, "freezer", parts[2], "freezer.state"))
			if err != nil {
				return false, false
			}
			return strings.TrimSpace(string(st)) != "THAWED", true
		}
		if parts[0] == "0" && parts[1] == "" {
			unified = parts[2]
		}
	}
	if unified == "" {
		return false, false
	}
	// The unified hierarchy at the root is cgroup v2 proper; on a hybrid
	// host (v1 controllers, v2 mounted elsewhere) the freezer line above
	// has answered.
	if _, err := os.Stat(filepath.Join(cgroupRoot, "cgroup.controllers")); err != nil {
		return false, false
	}
	st, err := os.ReadFile(filepath.Join(cgroupRoot, unified, "cgroup.freeze"))
	if err != nil {
		return false, false
	}
	return strings.TrimSpace(string(st)) != "0", true
}
