package docker

import (
	"bytes"
	"errors"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// kernelOOMKill reports whether the kernel's log says that the OOM killer
// killed process pid (0: unknown) or a process of container cid's cgroup
// between since and until. It reads the whole kernel log buffer (/dev/kmsg,
// which needs root) and is used only when the engine has not reported the
// kill itself.
//
// The kernel logs every OOM kill as "Memory cgroup out of memory: Killed
// process <pid> (<comm>) …" (always) and, rate-limited, as
// "oom-kill:…,task_memcg=<cgroup path>,task=<comm>,pid=<pid>,…", where the
// cgroup path names the container (/docker/<id>,
// /system.slice/docker-<id>.scope).
func kernelOOMKill(cid string, pid int, since, until time.Time) bool {
	fd, err := unix.Open("/dev/kmsg", unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return false
	}
	defer unix.Close(fd)
	buf := make([]byte, 8192)
	next := func() ([]byte, bool) {
		for {
			n, err := unix.Read(fd, buf)
			if errors.Is(err, unix.EPIPE) {
				continue // records overwritten while reading: go on with the next
			}
			if err != nil || n <= 0 {
				return nil, false // EAGAIN: the end of the log
			}
			return buf[:n], true
		}
	}
	return oomKillIn(next, bootTime(), cid, pid, since, until)
}

// oomKillIn looks for kernelOOMKill's records among those next returns.
func oomKillIn(next func() ([]byte, bool), boot time.Time, cid string, pid int, since, until time.Time) bool {
	killed := []byte("Killed process " + strconv.Itoa(pid) + " (")
	for {
		rec, more := next()
		if !more {
			return false
		}
		at, msg, ok := parseKmsg(rec, boot)
		if !ok || at.Before(since) || at.After(until) {
			continue
		}
		if pid > 0 && bytes.Contains(msg, killed) {
			return true
		}
		if rest, ok := bytes.CutPrefix(msg, []byte("oom-kill:")); ok {
			for _, f := range strings.Split(string(rest), ",") {
				if memcg, ok := strings.CutPrefix(f, "task_memcg="); ok && strings.Contains(memcg, cid) {
					return true
				}
			}
		}
	}
}

// parseKmsg reads a /dev/kmsg record, "<prio>,<seq>,<µs since
// boot>,<flags>;<message>\n[ continuation lines]", into its time (boot
// plus the timestamp) and its message's first line.
func parseKmsg(rec []byte, boot time.Time) (time.Time, []byte, bool) {
	head, msg, ok := bytes.Cut(rec, []byte(";"))
	if !ok {
		return time.Time{}, nil, false
	}
	f := bytes.Split(head, []byte(","))
	if len(f) < 3 {
		return time.Time{}, nil, false
	}
	us, err := strconv.ParseInt(string(f[2]), 10, 64)
	if err != nil {
		return time.Time{}, nil, false
	}
	msg, _, _ = bytes.Cut(msg, []byte("\n"))
	return boot.Add(time.Duration(us) * time.Microsecond), msg, true
}

// bootTime is when the kernel's clock of log timestamps started, on the
// wall clock: now less the monotonic clock.
func bootTime() time.Time {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return time.Time{}
	}
	return time.Now().Add(-time.Duration(ts.Nano()))
}
