package docker

import (
	"os"
	"testing"

	"github.com/dockervisor/dockervisor/internal/testenv"
)

// TestMain stops the private glance-api and Open vSwitch that tests may
// have started.
func TestMain(m *testing.M) {
	code := m.Run()
	testenv.StopGlance()
	testenv.StopOVS()
	os.Exit(code)
}
