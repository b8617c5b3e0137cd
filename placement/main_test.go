package placement_test

import (
	"os"
	"testing"

	"github.com/dockervisor/dockervisor/internal/testenv"
)

// TestMain stops the private placement-api and engines the tests share.
func TestMain(m *testing.M) {
	code := m.Run()
	testenv.StopEngines()
	testenv.StopPlacement()
	os.Exit(code)
}
