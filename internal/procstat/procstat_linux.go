// Package procstat reads the fields of a process's /proc/PID/stat.
package procstat

import (
	"bytes"
	"errors"
	"os"
	"strconv"
	"strings"
)

// Fields returns the fields of /proc/PID/stat from field 3 (the state)
// on, so that field n (as proc(5) numbers them) is Fields(pid)[n-3]. The
// command, field 2, may hold spaces and parentheses: the fields are
// counted after its last ')'.
func Fields(pid int) ([]string, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return nil, err
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return nil, errors.New("procstat: no command in /proc/" + strconv.Itoa(pid) + "/stat")
	}
	return strings.Fields(string(b[i+1:])), nil
}
