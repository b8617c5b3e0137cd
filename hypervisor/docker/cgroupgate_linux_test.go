package docker

import (
	"testing"

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
