package hypervisortest_test

import (
	"testing"

	"github.com/dockervisor/dockervisor/hypervisor/hypervisortest"
)

func TestFakeConformance(t *testing.T) {
	hypervisortest.TestDriver(t, func(t *testing.T) hypervisortest.Harness {
		return hypervisortest.NewFakeHarness(t)
	})
}
