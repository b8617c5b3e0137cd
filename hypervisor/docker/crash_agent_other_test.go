//go:build !linux

package docker

import (
	"fmt"
	"os"
)

// crashAgentEnv makes the test binary run a crash job instead of tests.
const crashAgentEnv = "DOCKERVISOR_CRASH_AGENT"

// crashAgentMain: the crash tests need Linux (network namespaces).
func crashAgentMain() int {
	fmt.Fprintln(os.Stderr, "crash agent: Linux only")
	return 2
}
