package hypervisortest

import (
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dockervisor/dockervisor/hypervisor"
)

func testImageCache(t *testing.T, e *agentEnv) {
	ctx := t.Context()
	_, err := e.a.PruneImages(ctx, hypervisor.PruneOptions{OlderThan: -time.Second})
	requireClass(t, err, hypervisor.ErrInvalidArgument, "")
	if e.ah.StoreImage == "" {
		if !e.caps.ImageStore {
			err := e.a.PrefetchImage(ctx, "hvt-anything")
			requireUnsupportedOr(t, false, err, hypervisor.ErrNotSupported, "")
		}
		t.Skip("AgentHarness.StoreImage is empty")
	}
	img := e.ah.StoreImage
	err = e.a.PrefetchImage(ctx, "hvt-missing-"+randomHex(4))
	requireClass(t, err, hypervisor.ErrImageNotFound, "", "prefetch of a missing store image")
	require.NoError(t, e.a.PrefetchImage(ctx, img), "prefetch")
	require.NoError(t, e.a.PrefetchImage(ctx, img), "prefetch of a cached image")

	cached := func(rep hypervisor.PruneReport) (hypervisor.CachedImage, bool, bool) {
		for _, c := range rep.Kept {
			if c.StoreID == img {
				return c, true, false
			}
		}
		for _, c := range rep.Removed {
			if c.StoreID == img {
				return c, false, true
			}
		}
		return hypervisor.CachedImage{}, false, false
	}
	rep, err := e.a.PruneImages(ctx, hypervisor.PruneOptions{})
	require.NoError(t, err)
	c, kept, _ := cached(rep)
	require.True(t, kept, "a prefetched image is in the cache: %+v", rep)
	assert.Positive(t, c.Size)
	assert.False(t, c.InUse)

	spec := e.spec("cache")
	spec.Image = img
	e.spawn(t, spec)
	rep, err = e.a.PruneImages(ctx, hypervisor.PruneOptions{MaxTotalBytes: 1, OlderThan: time.Nanosecond})
	require.NoError(t, err)
	c, kept, _ = cached(rep)
	assert.True(t, kept, "an image in use is kept")
	assert.True(t, c.InUse)

	require.NoError(t, e.d.Destroy(ctx, spec.ID))
	rep, err = e.a.PruneImages(ctx, hypervisor.PruneOptions{OlderThan: time.Hour})
	require.NoError(t, err)
	_, kept, _ = cached(rep)
	assert.True(t, kept, "an image used recently is kept by the age bound")
	rep, err = e.a.PruneImages(ctx, hypervisor.PruneOptions{MaxTotalBytes: 1})
	require.NoError(t, err)
	_, _, removed := cached(rep)
	assert.True(t, removed, "an unused image beyond the size bound is removed: %+v", rep)
	assert.GreaterOrEqual(t, rep.FreedBytes, c.Size)
	rep, err = e.a.PruneImages(ctx, hypervisor.PruneOptions{MaxTotalBytes: 1})
	require.NoError(t, err)
	_, kept, removed = cached(rep)
	assert.False(t, kept || removed, "pruned image is gone from the cache")

	// Spawn fetches it again; the age bound removes it once unused.
	spec2 := e.spec("cache2")
	spec2.Image = img
	e.spawn(t, spec2)
	require.NoError(t, e.d.Destroy(ctx, spec2.ID))
	rep, err = e.a.PruneImages(ctx, hypervisor.PruneOptions{OlderThan: time.Nanosecond})
	require.NoError(t, err)
	_, _, removed = cached(rep)
	assert.True(t, removed, "an unused image older than the bound is removed")
}

func testBulkStats(t *testing.T, e *agentEnv) {
	ctx := t.Context()
	a, b, off := e.spec("bulk-a"), e.spec("bulk-b"), e.spec("bulk-off")
	e.spawn(t, a)
	e.spawn(t, b)
	e.spawn(t, off)
	require.NoError(t, e.d.PowerOff(ctx, off.ID, hypervisor.StopOptions{Timeout: stopTimeout}))
	all, err := e.a.AllInstanceStats(ctx)
	require.NoError(t, err)
	byID := map[string]int{}
	for i, s := range all {
		byID[s.ID] = i
		if i > 0 {
			assert.Less(t, all[i-1].ID, s.ID, "sorted by ID")
		}
	}
	for _, id := range []string{a.ID, b.ID, off.ID} {
		require.Contains(t, byID, id)
	}
	for _, id := range []string{a.ID, b.ID} {
		s := all[byID[id]]
		single, err := e.d.InstanceStats(ctx, id)
		require.NoError(t, err)
		assert.Positive(t, s.MemoryBytes, "memory of %s", id)
		assert.Equal(t, single.MemoryLimitBytes, s.MemoryLimitBytes, "limit of %s as InstanceStats", id)
		assert.Equal(t, uint64(64)<<20, s.MemoryLimitBytes)
		assert.InDelta(t, float64(single.MemoryBytes), float64(s.MemoryBytes), float64(single.MemoryBytes)/2+float64(1<<20), "memory of %s near InstanceStats", id)
		assert.False(t, s.Time.IsZero())
		assert.Equal(t, len(single.Interfaces), len(s.Interfaces), "interfaces of %s", id)
	}
	so := all[byID[off.ID]]
	assert.Zero(t, so.MemoryBytes, "a stopped instance uses no memory")
	assert.Zero(t, so.CPUTime)
}

var uuidPattern = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

func testHostFacts(t *testing.T, e *agentEnv) {
	ctx := t.Context()
	f, err := e.a.HostFacts(ctx)
	require.NoError(t, err)
	assert.Regexp(t, uuidPattern, f.NodeUUID)
	assert.NotEmpty(t, f.Hostname)
	assert.NotEmpty(t, f.Architecture)
	assert.NotEmpty(t, f.OS)
	assert.NotEmpty(t, f.KernelVersion)
	assert.NotEmpty(t, f.EngineVersion)
	assert.NotEmpty(t, f.Addresses)
	for _, a := range f.Addresses {
		assert.True(t, a.IsGlobalUnicast() || a.IsPrivate(), "address %s", a)
		assert.False(t, a.IsLoopback())
	}
	f2, err := e.a.HostFacts(ctx)
	require.NoError(t, err)
	assert.Equal(t, f.NodeUUID, f2.NodeUUID, "stable")
	if e.ah.Reopen != nil {
		d := e.ah.Reopen(t)
		f3, err := d.HostFacts(ctx)
		require.NoError(t, err)
		assert.Equal(t, f.NodeUUID, f3.NodeUUID, "persisted across a driver restart")
	}
}
