//go:build !linux

package docker

import "os"

// processStart knows only this process: elsewhere, without /proc, a
// process of another PID counts as gone.
func processStart(pid int) (uint64, string) {
	if pid == os.Getpid() {
		return 1, ""
	}
	return 0, ""
}
