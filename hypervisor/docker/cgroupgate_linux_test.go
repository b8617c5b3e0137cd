package docker

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"golang.org/x/sys/unix"
)

func TestCgroup2SuperOptions(t *testing.T) {
	mi := []byte(`22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw
35 22 0:30 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
`)
	opts, ok := cgroup2SuperOptions(mi)
	assert.True(t, ok)
	assert.Equal(t, []string{"rw", "nsdelegate", "memory_recursiveprot"}, opts)
	_, ok = cgroup2SuperOptions([]byte("22 1 254:0 / / rw - ext4 /dev/vda rw\n"))
	assert.False(t, ok)

	// A bind remount keeps the mount's other flags and drops read-only.
	f := bindRemountFlags(unix.ST_RDONLY | unix.ST_NOSUID | unix.ST_NODEV | unix.ST_NOEXEC | unix.ST_RELATIME)
	assert.Equal(t, uintptr(unix.MS_REMOUNT|unix.MS_BIND|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC|unix.MS_RELATIME), f)
}

func TestOOMKillInKernelLog(t *testing.T) {
	const cid = "5b0300d85148207cf2715512a0b89b1882f30becc7d96d3a21ab8aec3b503d12"
	boot := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	log := []string{
		"6,100,1000000,-;eth0: link up",
		"4,101,146917761,-;oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=docker-" + cid + ".scope,mems_allowed=0,oom_memcg=/system.slice/docker-" + cid + ".scope,task_memcg=/system.slice/docker-" + cid + ".scope,task=dd,pid=844,uid=0",
		"3,102,146918625,-;Memory cgroup out of memory: Killed process 844 (dd) total-vm:67796kB, anon-rss:16008kB\n SUBSYSTEM=memory",
		"3,103,300000000,-;Memory cgroup out of memory: Killed process 9000 (stress) total-vm:1kB",
		"garbage without a header",
	}
	records := func() func() ([]byte, bool) {
		i := 0
		return func() ([]byte, bool) {
			if i == len(log) {
				return nil, false
			}
			i++
			return []byte(log[i-1]), true
		}
	}
	at := func(s float64) time.Time { return boot.Add(time.Duration(s * float64(time.Second))) }
	for _, c := range []struct {
		name         string
		cid          string
		pid          int
		since, until time.Time
		want         bool
	}{
		{"by pid", "other", 844, at(140), at(150), true},
		{"by cgroup, pid unknown", cid, 0, at(140), at(150), true},
		{"before the start", cid, 844, at(147), at(150), false},
		{"after the exit", cid, 844, at(100), at(146), false},
		{"another process and cgroup", "other", 845, at(0), at(1000), false},
		{"the other kill, by pid", "x", 9000, at(299), at(301), true},
	} {
		got := oomKillIn(records(), boot, c.cid, c.pid, c.since, c.until)
		assert.Equal(t, c.want, got, c.name)
	}
	_, _, ok := parseKmsg([]byte("6,1,notanumber,-;x"), boot)
	assert.False(t, ok)
}
