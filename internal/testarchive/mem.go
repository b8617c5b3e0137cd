package testarchive

import (
	"bufio"
	"os"
	"strconv"
	"strings"
)

// ProcStatus returns a size field of /proc/self/status (such as "VmRSS" or
// "VmHWM") in bytes, or -1.
func ProcStatus(field string) int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return -1
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return -1
}

// ResetPeakRSS resets the process's peak RSS (VmHWM) to its current RSS.
func ResetPeakRSS() error { return os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) }
