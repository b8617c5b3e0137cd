package hypervisortest_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/dockervisor/dockervisor/hypervisor"
	"github.com/dockervisor/dockervisor/hypervisor/hypervisortest"
)

func TestFakeAgentConformance(t *testing.T) {
	hypervisortest.TestAgentDriver(t, func(t *testing.T) hypervisortest.AgentHarness {
		return hypervisortest.NewFakeAgentHarness(t)
	})
}

func TestPlanPrune(t *testing.T) {
	now := time.Unix(1000, 0)
	img := func(id string, size int64, age time.Duration, inUse bool) hypervisor.CachedImage {
		return hypervisor.CachedImage{StoreID: id, Size: size, LastUsed: now.Add(-age), InUse: inUse}
	}
	all := []hypervisor.CachedImage{
		img("old-used", 100, 10*time.Hour, true),
		img("old", 100, 5*time.Hour, false),
		img("mid", 100, 2*time.Hour, false),
		img("new", 100, time.Minute, false),
	}
	ids := func(cs []hypervisor.CachedImage) []string {
		var out []string
		for _, c := range cs {
			out = append(out, c.StoreID)
		}
		return out
	}
	keep, drop := hypervisor.PlanPrune(all, hypervisor.PruneOptions{}, now)
	assert.Empty(t, drop, "no bound, nothing removed")
	assert.Len(t, keep, 4)
	_, drop = hypervisor.PlanPrune(all, hypervisor.PruneOptions{OlderThan: 3 * time.Hour}, now)
	assert.Equal(t, []string{"old"}, ids(drop), "age bound")
	_, drop = hypervisor.PlanPrune(all, hypervisor.PruneOptions{MaxTotalBytes: 250}, now)
	assert.Equal(t, []string{"mid", "old"}, ids(drop), "size bound: least recently used first, in-use kept")
	keep, drop = hypervisor.PlanPrune(all, hypervisor.PruneOptions{MaxTotalBytes: 1}, now)
	assert.Equal(t, []string{"mid", "new", "old"}, ids(drop), "in use is never removed")
	assert.Equal(t, []string{"old-used"}, ids(keep))
}
