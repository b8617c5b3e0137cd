package docker

import (
	"time"

	"golang.org/x/sys/unix"
)

// monotonicNow reads CLOCK_MONOTONIC, the clock a container shares with
// its host (neither the engine nor LXC gives a guest a time namespace),
// on which systemd stamps its own start and the end of its startup: the
// benchmark sets a guest's boot against the host's clock by it. ok is
// false where there is no such clock.
func monotonicNow() (d time.Duration, ok bool) {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return 0, false
	}
	return time.Duration(ts.Nano()), true
}
