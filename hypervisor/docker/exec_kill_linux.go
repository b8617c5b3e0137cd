package docker

import (
	"fmt"
	"os"
	"syscall"
)

// killInNamespace sends SIGKILL to host process pid if it shares the PID
// namespace of the container's init process initPID (a reused PID fails
// the check). It fails with errRemoteProcess when the processes are not
// visible here (a remote engine).
func killInNamespace(pid, initPID int) error {
	ns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", pid))
	if err != nil {
		return fmt.Errorf("%w: %w", errRemoteProcess, err)
	}
	initNS, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", initPID))
	if err != nil {
		return fmt.Errorf("%w: %w", errRemoteProcess, err)
	}
	if ns != initNS {
		return fmt.Errorf("%w: pid %d is not in the instance's namespace", errRemoteProcess, pid)
	}
	return syscall.Kill(pid, syscall.SIGKILL)
}
