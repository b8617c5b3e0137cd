package networktest_test

import (
	"testing"

	"github.com/dockervisor/dockervisor/network/networktest"
)

func TestRecorderConformance(t *testing.T) {
	networktest.TestVIFDriver(t, networktest.NewRecorderHarness)
}
