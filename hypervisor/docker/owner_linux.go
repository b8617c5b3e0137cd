package docker

import (
	"bytes"
	"os"
	"strconv"
	"strings"
)

// processStart returns the start time of process pid (field 22 of
// /proc/<pid>/stat, ticks since boot) and the kernel's boot ID; zero and
// "" for what cannot be read (no such process).
func processStart(pid int) (uint64, string) {
	var start uint64
	if b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat"); err == nil {
		// The command (field 2) may hold spaces and parentheses: count
		// the fields after its last ')'.
		if i := bytes.LastIndexByte(b, ')'); i >= 0 {
			f := strings.Fields(string(b[i+1:]))
			// f[0] is field 3 (state); field 22 is f[19].
			if len(f) > 19 {
				start, _ = strconv.ParseUint(f[19], 10, 64)
			}
		}
	}
	boot, _ := os.ReadFile("/proc/sys/kernel/random/boot_id")
	return start, strings.TrimSpace(string(boot))
}
