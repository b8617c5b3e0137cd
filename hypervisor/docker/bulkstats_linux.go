package docker

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/dockervisor/dockervisor/stats"
)

// cgroupName is how the engine names a container's cgroup directory:
// the container ID between a prefix and a suffix (none with the cgroupfs
// driver, "docker-" and ".scope" with the systemd driver).
type cgroupName struct {
	prefix, suffix string
}

func (n cgroupName) of(cid string) string { return n.prefix + cid + n.suffix }

// splitContainerCgroup splits path p, the cgroup of a process of
// container cid, into the directory holding the containers' cgroups and
// how the engine names them. What the container made below its own
// cgroup (an OS instance's init.scope, on cgroup v2) is dropped. ok is
// false when p does not name the container.
func splitContainerCgroup(p, cid string) (parent string, name cgroupName, ok bool) {
	parts := strings.Split(p, "/")
	for i, c := range parts {
		if j := strings.Index(c, cid); j >= 0 {
			return strings.Join(parts[:i], "/"), cgroupName{prefix: c[:j], suffix: c[j+len(cid):]}, true
		}
	}
	return "", cgroupName{}, false
}

// cgroupV1 reads containers' counters from cgroup v1 hierarchies, where
// the engine puts container cid at <hierarchy>/<parent>/<name of cid>.
type cgroupV1 struct {
	memory, cpuacct, blkio, freezer string // <mount>/<parent>
	name                            cgroupName
}

// cgroupV2 reads them from the unified hierarchy, at <parent>/<name of
// cid>, or below it where the runtime puts the container in a cgroup of
// its own (see runtimeCgroup).
type cgroupV2 struct {
	parent string
	name   cgroupName
	dirs   *sync.Map // container ID -> its runtime's cgroup directory
}

// newCgroupReader finds where the engine puts its containers' cgroups,
// and how it names them, from the /proc/<pid>/cgroup of container cid's
// process.
func newCgroupReader(pid int, cid string) cgroupReader {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		return nil
	}
	paths := map[string]string{}
	var name cgroupName
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		dir, n, ok := splitContainerCgroup(parts[2], cid)
		if !ok {
			continue
		}
		name = n
		for _, ctrl := range strings.Split(parts[1], ",") {
			paths[ctrl] = dir
		}
	}
	if dir, ok := paths[""]; ok && len(paths) == 1 {
		r := cgroupV2{parent: filepath.Join("/sys/fs/cgroup", dir), name: name, dirs: new(sync.Map)}
		if _, err := os.Stat(filepath.Join(r.dir(cid), "memory.current")); err != nil {
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
		freezer: mount("freezer", "freezer"),
		name:    name,
	}
	if _, err := os.Stat(filepath.Join(r.memory, name.of(cid), "memory.usage_in_bytes")); err != nil {
		return nil
	}
	return r
}

// dir is container cid's cgroup directory: the one its runtime made,
// found once per container (runtimeCgroup), or the one the engine names
// until it has a process.
func (r cgroupV2) dir(cid string) string {
	if d, ok := r.dirs.Load(cid); ok {
		return d.(string)
	}
	base := filepath.Join(r.parent, r.name.of(cid))
	d, ok := runtimeCgroup(base, cid)
	if ok {
		r.dirs.Store(cid, d)
	}
	return d
}

// retain forgets the cgroup directories of the containers keep does not
// hold.
func (r cgroupV2) retain(keep map[string]bool) {
	r.dirs.Range(func(k, _ any) bool {
		if !keep[k.(string)] {
			r.dirs.Delete(k)
		}
		return true
	})
}

func (cgroupV1) retain(map[string]bool) {}

// runtimeCgroup returns the cgroup directory that the runtime made for
// container cid, whose cgroup as the engine names it is base: the root of
// the container's cgroup namespace. runc puts the container at base
// itself; crun with the systemd driver gives base (the engine's scope) to
// systemd as a delegated unit and puts the container, with its limits and
// freezer, in base/container. The root is read from the mount table of a
// process of base's subtree: the kernel shows the root of a cgroup2 mount
// relative to the reader's cgroup namespace, so for a mount made in the
// container's namespace the host sees that namespace's root. A container
// without a cgroup namespace of its own (the engine's host mode) has its
// mount's root at the top of the hierarchy, outside base: then base is
// its cgroup. ok is false while base's subtree has no process (base is
// returned).
func runtimeCgroup(base, cid string) (dir string, ok bool) {
	pid, err := firstProcess(base)
	if err != nil {
		return base, false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/mountinfo", pid))
	if err != nil {
		return base, false
	}
	root, found := cgroup2Root(b, "/sys/fs/cgroup")
	if !found || !strings.Contains(root, cid) {
		return base, true
	}
	dir = filepath.Join("/sys/fs/cgroup", root)
	if dir != base && !strings.HasPrefix(dir, base+"/") {
		return base, true
	}
	return dir, true
}

// cgroup2Root returns the root of the cgroup2 mount at mountpoint in
// mount table mi (the format of /proc/<pid>/mountinfo).
func cgroup2Root(mi []byte, mountpoint string) (string, bool) {
	for _, line := range strings.Split(string(mi), "\n") {
		f := strings.Fields(line)
		if len(f) < 5 || f[4] != mountpoint {
			continue
		}
		if i := slices.Index(f, "-"); i > 0 && i+1 < len(f) && f[i+1] == "cgroup2" {
			return f[3], true
		}
	}
	return "", false
}

// frozen reads the v1 freezer's freezer.state: anything but THAWED.
func (r cgroupV1) frozen(cid string) (bool, error) {
	b, err := os.ReadFile(filepath.Join(r.freezer, r.name.of(cid), "freezer.state"))
	return strings.TrimSpace(string(b)) != "THAWED", err
}

// frozen reads cgroup.freeze: anything but 0.
func (r cgroupV2) frozen(cid string) (bool, error) {
	b, err := os.ReadFile(filepath.Join(r.dir(cid), "cgroup.freeze"))
	return strings.TrimSpace(string(b)) != "0", err
}

func (r cgroupV1) memoryUsage(cid string) (uint64, error) {
	mem := filepath.Join(r.memory, r.name.of(cid))
	return memoryNoCache(filepath.Join(mem, "memory.usage_in_bytes"), filepath.Join(mem, "memory.stat"), "total_inactive_file")
}

func (r cgroupV2) memoryUsage(cid string) (uint64, error) {
	dir := r.dir(cid)
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
	name := r.name.of(cid)
	mem := filepath.Join(r.memory, name)
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
	ns, err := readUint(filepath.Join(r.cpuacct, name, "cpuacct.usage"))
	if err != nil {
		return s, err
	}
	s.CPUTime = time.Duration(ns)
	s.BlockReadBytes, s.BlockWriteBytes = blkioV1(filepath.Join(r.blkio, name, "blkio.throttle.io_service_bytes_recursive"))
	return s, sampleInterfaces(ctx, &s, mem)
}

func (r cgroupV2) sample(ctx context.Context, cid string, memTotal uint64) (stats.Instance, error) {
	s := stats.Instance{Time: time.Now()}
	dir := r.dir(cid)
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
	s.BlockReadBytes, s.BlockWriteBytes = ioStatV2(filepath.Join(dir, "io.stat"))
	return s, sampleInterfaces(ctx, &s, dir)
}

// ioStatV2 sums the bytes read and written over all devices of a cgroup
// v2 io.stat file ("<major>:<minor> rbytes=N wbytes=N rios=N …" lines),
// which counts the cgroup and its descendants.
func ioStatV2(path string) (read, write uint64) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, 0
	}
	for _, f := range strings.Fields(string(b)) {
		if v, ok := strings.CutPrefix(f, "rbytes="); ok {
			n, _ := strconv.ParseUint(v, 10, 64)
			read += n
		} else if v, ok := strings.CutPrefix(f, "wbytes="); ok {
			n, _ := strconv.ParseUint(v, 10, 64)
			write += n
		}
	}
	return read, write
}

// sampleInterfaces reads the counters of the interfaces in the network
// namespace of a process of the container whose cgroup is dir. The
// container's own cgroup may have no process: on cgroup v2 an OS
// instance's init moves every process into cgroups below it, so the
// first process in the subtree is taken.
func sampleInterfaces(ctx context.Context, s *stats.Instance, dir string) error {
	pid, err := firstProcess(dir)
	if err != nil {
		return err
	}
	ns, err := openNetNS(pid)
	if err != nil {
		return err
	}
	defer ns.Close()
	s.Interfaces, err = interfaceCounters(ctx, ns)
	return err
}

// errNoProcess means a container's cgroup subtree has no process.
var errNoProcess = errors.New("no process in the container's cgroup")

// firstProcess returns the first process of cgroup dir's subtree,
// depth first.
func firstProcess(dir string) (int, error) {
	b, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	if err != nil {
		return 0, err
	}
	if first, _, _ := strings.Cut(strings.TrimSpace(string(b)), "\n"); first != "" {
		return strconv.Atoi(first)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return 0, err
	}
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		if pid, err := firstProcess(filepath.Join(dir, e.Name())); err == nil {
			return pid, nil
		}
	}
	return 0, errNoProcess
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
