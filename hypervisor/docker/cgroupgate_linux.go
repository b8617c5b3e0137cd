package docker

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/dockervisor/dockervisor/internal/osthread"
)

// cgroupMount is where an OS instance's cgroup file system is mounted.
const cgroupMount = "/sys/fs/cgroup"

// openCgroupGate makes the cgroup2 mount in the mount namespace of
// process pid (container cid's gate shell, waiting) writable with a bind
// remount, and then creates the gate's flag in its /run, which lets the
// init start.
//
// The bind remount changes the flags of that one mount, in that
// namespace; the cgroup2 superblock it shares with the host and every
// other container keeps its options (nsdelegate among them), so the
// instance still cannot write its own cgroup's limits.
//
// It runs in-process rather than through nsenter(1) and mount(8): no
// dependency on the host's util-linux, the mount flags are exactly the
// ones read back from the mount (no option parsing in between), errors
// come back as errnos, and it costs a thread instead of two processes.
// setns(CLONE_NEWNS) refuses a thread that shares its file-system
// context (root, cwd) with others, as every Go thread does, so the work
// runs on a thread of its own (osthread.Go: never the main thread),
// which first unshares CLONE_FS and is never unlocked: the runtime ends
// that thread with the goroutine instead of reusing it elsewhere.
func openCgroupGate(pid int, cid string) error {
	ns, err := os.Open(fmt.Sprintf("/proc/%d/ns/mnt", pid))
	if err != nil {
		return fmt.Errorf("cgroup gate: open the instance's mount namespace: %w", err)
	}
	defer ns.Close()
	// The namespace is the instance's only if its process still is the
	// container's (a PID is reused once its process has gone), which
	// its cgroup tells.
	if err := checkProcessCgroup(pid, cid); err != nil {
		return fmt.Errorf("cgroup gate: %w", err)
	}
	errc := make(chan error, 1)
	osthread.Go(func() bool {
		errc <- remountAndOpen(ns)
		return false // see the function's comment
	})
	if err := <-errc; err != nil {
		return fmt.Errorf("cgroup gate: %w", err)
	}
	return nil
}

// remountAndOpen runs on a locked thread of its own: it enters the mount
// namespace ns, makes its cgroup2 mount writable and creates the flag.
func remountAndOpen(ns *os.File) error {
	if err := unix.Unshare(unix.CLONE_FS); err != nil {
		return fmt.Errorf("unshare the file-system context: %w", err)
	}
	if err := unix.Setns(int(ns.Fd()), unix.CLONE_NEWNS); err != nil {
		return fmt.Errorf("enter the instance's mount namespace: %w", err)
	}
	// Paths now resolve in the instance's file system.
	var st unix.Statfs_t
	if err := unix.Statfs(cgroupMount, &st); err != nil {
		return fmt.Errorf("%s in the instance: %w", cgroupMount, err)
	}
	if st.Type != unix.CGROUP2_SUPER_MAGIC {
		return fmt.Errorf("%s in the instance is not a cgroup2 mount (file system type %#x)", cgroupMount, st.Type)
	}
	if err := unix.Mount("", cgroupMount, "", bindRemountFlags(st.Flags), ""); err != nil {
		return fmt.Errorf("bind-remount %s writable in the instance: %w", cgroupMount, err)
	}
	fd, err := unix.Open(cgroupGateFlag, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("create %s in the instance: %w", cgroupGateFlag, err)
	}
	if err == nil {
		_ = unix.Close(fd)
	}
	return nil
}

// bindRemountFlags returns the mount(2) flags of a bind remount that
// makes a mount with statfs flags f writable and keeps the rest of its
// per-mount flags (a bind remount sets all of them at once).
func bindRemountFlags(f int64) uintptr {
	flags := uintptr(unix.MS_REMOUNT | unix.MS_BIND)
	for _, m := range []struct {
		st int64
		ms uintptr
	}{
		{unix.ST_NOSUID, unix.MS_NOSUID},
		{unix.ST_NODEV, unix.MS_NODEV},
		{unix.ST_NOEXEC, unix.MS_NOEXEC},
		{unix.ST_NOATIME, unix.MS_NOATIME},
		{unix.ST_NODIRATIME, unix.MS_NODIRATIME},
		{unix.ST_RELATIME, unix.MS_RELATIME},
	} {
		if f&m.st != 0 {
			flags |= m.ms
		}
	}
	return flags
}

// checkProcessCgroup checks that process pid is in container cid's
// cgroup, from the host's view of /proc/<pid>/cgroup.
func checkProcessCgroup(pid int, cid string) error {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		return fmt.Errorf("the instance's process %d: %w", pid, err)
	}
	if !bytes.Contains(b, []byte(cid)) {
		return fmt.Errorf("process %d is no longer the instance's (its cgroup: %s)", pid, strings.TrimSpace(string(b)))
	}
	return nil
}

// checkNsdelegate checks that this host's cgroup2 file system is mounted
// with nsdelegate, which keeps an instance's own limits out of its reach
// once its cgroup mount is writable.
func checkNsdelegate() error {
	// The calling thread's view, not the main thread's (/proc/self),
	// which a goroutine may hold in an instance's mount namespace.
	b, err := os.ReadFile("/proc/thread-self/mountinfo")
	if err != nil {
		return err
	}
	opts, ok := cgroup2SuperOptions(b)
	if !ok {
		return errors.New("no cgroup2 file system is mounted on this host")
	}
	if !slices.Contains(opts, "nsdelegate") {
		return fmt.Errorf("the host's cgroup2 file system is mounted without nsdelegate (options %s): "+
			"a writable cgroup mount would let an instance change its own limits", strings.Join(opts, ","))
	}
	return nil
}

// cgroup2SuperOptions returns the super options of the first cgroup2
// mount in a mountinfo table (they belong to the one cgroup2 superblock,
// whichever mount shows them).
func cgroup2SuperOptions(mountinfo []byte) ([]string, bool) {
	sc := bufio.NewScanner(bytes.NewReader(mountinfo))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		// <id> <parent> <dev> <root> <mount point> <options> [optional...] - <fstype> <source> <super options>
		_, post, ok := strings.Cut(sc.Text(), " - ")
		if !ok {
			continue
		}
		f := strings.Fields(post)
		if len(f) >= 3 && f[0] == "cgroup2" {
			return strings.Split(f[2], ","), true
		}
	}
	return nil, false
}
