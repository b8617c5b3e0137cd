package linkutil_test

import (
	"os"
	"runtime"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/dockervisor/dockervisor/internal/testenv"
	"github.com/dockervisor/dockervisor/network/internal/linkutil"
)

// onMainThread runs functions on the process's main thread, which
// /proc/self names: the main goroutine stays locked to it (init) and
// serves this channel while the tests run (TestMain).
var onMainThread = make(chan func())

func init() { runtime.LockOSThread() }

func TestMain(m *testing.M) {
	code := make(chan int)
	go func() { code <- m.Run() }()
	for {
		select {
		case f := <-onMainThread:
			f()
		case c := <-code:
			os.Exit(c)
		}
	}
}

// TestCurrentNetNSWhileMainThreadElsewhere: while the main thread is in
// an instance's namespace (as a goroutine locked to it for a namespace
// switch may hold it), the process's own namespace opens as itself and
// stays alive, and Do's thread is never the main one.
func TestCurrentNetNSWhileMainThreadElsewhere(t *testing.T) {
	testenv.MustHaveRoot(t)
	host := open(t, "")
	guestNS := testenv.NewGuestNetns(t)
	guest := open(t, guestNS.Path)

	entered := make(chan error)
	leave := make(chan struct{})
	left := make(chan error)
	onMainThread <- func() {
		orig, err := netns.Get()
		if err == nil {
			err = netns.Set(netns.NsHandle(guest.Fd()))
		}
		entered <- err
		if err != nil {
			return
		}
		<-leave
		left <- netns.Set(orig)
		orig.Close()
	}
	require.NoError(t, <-entered)
	defer func() {
		close(leave)
		require.NoError(t, <-left, "the main thread could not go back to the host's namespace")
	}()

	var self, g unix.Stat_t
	require.NoError(t, unix.Stat("/proc/self/ns/net", &self))
	require.NoError(t, unix.Fstat(guest.Fd(), &g))
	require.Equal(t, g.Ino, self.Ino, "the main thread is in the guest's namespace: /proc/self says so")

	require.NoError(t, host.Alive(), "the host's namespace seems gone while the main thread is elsewhere")
	again := open(t, linkutil.CurrentNetNS)
	assert.True(t, again.SameAs(host), "the process's own namespace opened as another one")
	assert.False(t, again.SameAs(guest))
	require.NoError(t, guest.Do(func() error {
		assert.NotEqual(t, unix.Getpid(), unix.Gettid(), "Do ran on the main thread")
		return nil
	}))
}
