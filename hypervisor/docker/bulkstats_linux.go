package docker

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/dockervisor/dockervisor/stats"
)

// cgroupV1 reads containers' counters from cgroup v1 hierarchies, where
// the engine puts container cid at <hierarchy>/<parent>/<cid>.
type cgroupV1 struct {
	memory, cpuacct, blkio string // <mount>/<parent>
}

// cgroupV2 reads them from the unified hierarchy, at <parent>/<cid>.
type cgroupV2 struct {
	parent string
}

// newCgroupReader finds the cgroup parent of the engine's containers
// from the /proc/<pid>/cgroup of container cid's process.
func newCgroupReader(pid int, cid string) cgroupReader {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		return nil
	}
	paths := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		dir, ok := strings.CutSuffix(parts[2], "/"+cid)
		if !ok {
			if strings.HasSuffix(parts[2], "/docker-"+cid+".scope") {
				return nil // systemd driver: names differ; use the engine
			}
			continue
		}
		for _, ctrl := range strings.Split(parts[1], ",") {
			paths[ctrl] = dir
		}
	}
	if dir, ok := paths[""]; ok && len(paths) == 1 {
		r := cgroupV2{parent: filepath.Join("/sys/fs/cgroup", dir)}
		if _, err := os.Stat(filepath.Join(r.parent, cid, "memory.current")); err != nil {
			return nil
		}
		return r
	}
	mount := func(ctrl string, dirs ...string) string {
		for _, d := range dirs {
			p := filepath.Join("/sys/fs/cgroup", d)
			if _, err := os.Stat(p); err == nil {
				return filepath.Join(p, paths[ctrl])
			}
		}
		return ""
	}
	r := cgroupV1{
		memory:  mount("memory", "memory"),
		cpuacct: mount("cpuacct", "cpuacct", "cpu,cpuacct"),
		blkio:   mount("blkio", "blkio"),
	}
	if _, err := os.Stat(filepath.Join(r.memory, cid, "memory.usage_in_bytes")); err != nil {
		return nil
	}
	return r
}

func (r cgroupV1) memoryUsage(cid string) (uint64, error) {
	return memoryNoCache(filepath.Join(r.memory, cid, "memory.usage_in_bytes"), filepath.Join(r.memory, cid, "memory.stat"), "total_inactive_file")
}

func (r cgroupV2) memoryUsage(cid string) (uint64, error) {
	dir := filepath.Join(r.parent, cid)
	return memoryNoCache(filepath.Join(dir, "memory.current"), filepath.Join(dir, "memory.stat"), "inactive_file")
}

func memoryNoCache(usageFile, statFile, inactiveKey string) (uint64, error) {
	usage, err := readUint(usageFile)
	if err != nil {
		return 0, err
	}
	if inactive, err := statField(statFile, inactiveKey); err == nil && inactive < usage {
		return usage - inactive, nil
	}
	return usage, nil
}

func (r cgroupV1) sample(ctx context.Context, cid string, memTotal uint64) (stats.Instance, error) {
	s := stats.Instance{Time: time.Now()}
	mem := filepath.Join(r.memory, cid)
	usage, err := readUint(filepath.Join(mem, "memory.usage_in_bytes"))
	if err != nil {
		return s, err
	}
	inactive, _ := statField(filepath.Join(mem, "memory.stat"), "total_inactive_file")
	s.MemoryBytes = usage
	if inactive < usage {
		s.MemoryBytes = usage - inactive
	}
	if s.MemoryLimitBytes, err = readUint(filepath.Join(mem, "memory.limit_in_bytes")); err != nil {
		return s, err
	}
	if memTotal > 0 && s.MemoryLimitBytes > memTotal {
		s.MemoryLimitBytes = memTotal
	}
	ns, err := readUint(filepath.Join(r.cpuacct, cid, "cpuacct.usage"))
	if err != nil {
		return s, err
	}
	s.CPUTime = time.Duration(ns)
	s.BlockReadBytes, s.BlockWriteBytes = blkioV1(filepath.Join(r.blkio, cid, "blkio.throttle.io_service_bytes_recursive"))
	return s, sampleInterfaces(ctx, &s, filepath.Join(mem, "cgroup.procs"))
}

func (r cgroupV2) sample(ctx context.Context, cid string, memTotal uint64) (stats.Instance, error) {
	s := stats.Instance{Time: time.Now()}
	dir := filepath.Join(r.parent, cid)
	usage, err := readUint(filepath.Join(dir, "memory.current"))
	if err != nil {
		return s, err
	}
	inactive, _ := statField(filepath.Join(dir, "memory.stat"), "inactive_file")
	s.MemoryBytes = usage
	if inactive < usage {
		s.MemoryBytes = usage - inactive
	}
	s.MemoryLimitBytes = memTotal
	if b, err := os.ReadFile(filepath.Join(dir, "memory.max")); err == nil && strings.TrimSpace(string(b)) != "max" {
		s.MemoryLimitBytes, _ = strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	}
	usec, err := statField(filepath.Join(dir, "cpu.stat"), "usage_usec")
	if err != nil {
		return s, err
	}
	s.CPUTime = time.Duration(usec) * time.Microsecond
	if b, err := os.ReadFile(filepath.Join(dir, "io.stat")); err == nil {
		for _, f := range strings.Fields(string(b)) {
			if v, ok := strings.CutPrefix(f, "rbytes="); ok {
				n, _ := strconv.ParseUint(v, 10, 64)
				s.BlockReadBytes += n
			} else if v, ok := strings.CutPrefix(f, "wbytes="); ok {
				n, _ := strconv.ParseUint(v, 10, 64)
				s.BlockWriteBytes += n
			}
		}
	}
	return s, sampleInterfaces(ctx, &s, filepath.Join(dir, "cgroup.procs"))
}

// sampleInterfaces reads the counters of the interfaces in the network
// namespace of the first process of a cgroup.
func sampleInterfaces(ctx context.Context, s *stats.Instance, procs string) error {
	b, err := os.ReadFile(procs)
	if err != nil {
		return err
	}
	first, _, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
	pid, err := strconv.Atoi(first)
	if err != nil {
		return errors.New("no process in the container's cgroup")
	}
	ns, err := openNetNS(pid)
	if err != nil {
		return err
	}
	defer ns.Close()
	s.Interfaces, err = interfaceCounters(ctx, ns)
	return err
}

func readUint(path string) (uint64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
}

// statField returns the value of key in a "key value" lines file.
func statField(path, key string) (uint64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), " ")
		if ok && k == key {
			return strconv.ParseUint(strings.TrimSpace(v), 10, 64)
		}
	}
	return 0, fmt.Errorf("%s: no %s", path, key)
}

// blkioV1 sums the Read and Write lines of a blkio service-bytes file.
func blkioV1(path string) (read, write uint64) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) != 3 {
			continue
		}
		n, _ := strconv.ParseUint(f[2], 10, 64)
		switch f[1] {
		case "Read":
			read += n
		case "Write":
			write += n
		}
	}
	return read, write
}
