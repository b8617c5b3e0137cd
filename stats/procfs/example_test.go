package procfs_test

import (
	"fmt"

	"github.com/dockervisor/dockervisor/stats/procfs"
)

func ExampleCPUUtilization() {
	prev := procfs.CPUTimes{User: 1000, System: 500, Idle: 8000, IOWait: 500}
	cur := procfs.CPUTimes{User: 1150, System: 550, Idle: 8550, IOWait: 550}
	fmt.Printf("%.1f%%\n", procfs.CPUUtilization(prev, cur))
	fmt.Printf("%.1f%%\n", procfs.CPUUtilization(cur, cur)) // no time passed
	// Output:
	// 25.0%
	// 0.0%
}
