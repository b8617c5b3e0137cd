package docker

import (
	"os"
	"strconv"
	"strings"

	"github.com/dockervisor/dockervisor/internal/procstat"
)

// processStart returns the start time of process pid (field 22 of
// /proc/<pid>/stat, ticks since boot) and the kernel's boot ID; zero and
// "" for what cannot be read (no such process).
func processStart(pid int) (uint64, string) {
	var start uint64
	if f, err := procstat.Fields(pid); err == nil && len(f) > 22-3 {
		start, _ = strconv.ParseUint(f[22-3], 10, 64)
	}
	boot, _ := os.ReadFile("/proc/sys/kernel/random/boot_id")
	return start, strings.TrimSpace(string(boot))
}
