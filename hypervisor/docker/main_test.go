package docker

import (
	"os"
	"testing"

	"github.com/dockervisor/dockervisor/internal/testenv"
)

// TestMain stops the private glance-api, Open vSwitch and engines that
// tests may have started. Started with DOCKERVISOR_CRASH_AGENT set, the test binary
// is the agent of a crash test instead (see crash_agent_linux_test.go).
func TestMain(m *testing.M) {
	if os.Getenv(crashAgentEnv) != "" {
		os.Exit(crashAgentMain())
	}
	code := m.Run()
	testenv.StopGlance()
	testenv.StopOVS()
	testenv.StopEngines()
	os.Exit(code)
}
