package placement

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dockervisor/dockervisor/hypervisor"
	"github.com/dockervisor/dockervisor/stats"
)

func TestCapabilityTraits(t *testing.T) {
	assert.Equal(t, []string{TraitComputeNode}, CapabilityTraits(hypervisor.Capabilities{}))
	got := CapabilityTraits(hypervisor.Capabilities{HotplugVIF: true, Pause: true, Snapshot: true})
	assert.Equal(t, []string{TraitAttachInterface, TraitComputeNode, "CUSTOM_DOCKERVISOR_PAUSE", "CUSTOM_DOCKERVISOR_SNAPSHOT"}, got)
	for _, tr := range CapabilityTraits(hypervisor.Capabilities{Pause: true, Reboot: true, SoftDelete: true, Snapshot: true, ImageStore: true, VIFs: true, HotplugVIF: true, HostResources: true, InstanceStats: true, Events: true}) {
		assert.True(t, validTrait(tr), tr)
		assert.True(t, managedTrait(tr), tr)
	}
	assert.True(t, managedTrait(TraitDisabled))
	assert.False(t, managedTrait("CUSTOM_RACK_1"))
}

func TestCustomTrait(t *testing.T) {
	for in, want := range map[string]string{
		"rack-1":            "CUSTOM_RACK_1",
		"CUSTOM_x.y":        "CUSTOM_X_Y",
		"hypervisor_docker": "CUSTOM_HYPERVISOR_DOCKER",
		"--":                "",
	} {
		assert.Equal(t, want, CustomTrait(in), in)
	}
}

func TestUUID(t *testing.T) {
	u := NewUUID()
	assert.True(t, ValidUUID(u), u)
	assert.NotEqual(t, u, NewUUID())
	assert.False(t, ValidUUID("ABCDEF00-0000-0000-0000-000000000000"))
	assert.False(t, ValidUUID("x"))
}

func TestInventories(t *testing.T) {
	r := &Reporter{opts: reporterOptions{policies: map[string]InventoryPolicy{
		VCPU: {Reserved: 1, AllocationRatio: 2, MaxUnit: 100, StepSize: 2},
	}}}
	inv := r.Inventories(stats.Host{VCPUs: 8, MemoryMB: 300, DiskGB: 0})
	assert.Equal(t, map[string]Inventory{
		VCPU:     {Total: 8, Reserved: 1, AllocationRatio: 2, MinUnit: 1, MaxUnit: 8, StepSize: 2},
		MemoryMB: {Total: 300, Reserved: 300, AllocationRatio: DefaultRAMAllocationRatio, MinUnit: 1, MaxUnit: 300, StepSize: 1},
	}, inv, "reserved is clamped to the total, max unit to the total; no disk, no DISK_GB")
	r.opts.diskGB = 50
	assert.Equal(t, 50, r.Inventories(stats.Host{VCPUs: 1, DiskGB: 10})[DiskGB].Total)
}

func TestReporterOptions(t *testing.T) {
	_, err := NewReporter(nil, nil)
	require.ErrorIs(t, err, ErrInvalidArgument)
	for name, opt := range map[string]ReporterOption{
		"bad uuid":   WithNodeUUID("nope"),
		"empty file": WithStateFile(""),
		"class":      WithInventoryPolicy("GPU", InventoryPolicy{}),
		"min>max":    WithInventoryPolicy(VCPU, InventoryPolicy{MinUnit: 4, MaxUnit: 2}),
		"trait":      WithTraits("lower"),
		"interval":   WithReportInterval(0),
		"disk":       WithDiskGB(-1),
	} {
		var o reporterOptions
		o.policies = map[string]InventoryPolicy{}
		require.ErrorIs(t, opt(&o), ErrInvalidArgument, name)
	}
}

func TestRequestQuery(t *testing.T) {
	q, err := Request{Resources: Resources{VCPU: 2, MemoryMB: 512}, Required: []string{"CUSTOM_A"}, Forbidden: []string{"CUSTOM_B"}}.query(5)
	require.NoError(t, err)
	assert.Equal(t, "limit=5&required=CUSTOM_A%2C%21COMPUTE_STATUS_DISABLED%2C%21CUSTOM_B&resources=MEMORY_MB%3A512%2CVCPU%3A2", q.Encode())
	q, err = Request{Resources: Resources{VCPU: 1}}.query(0)
	require.NoError(t, err)
	assert.Equal(t, "required=%21COMPUTE_STATUS_DISABLED&resources=VCPU%3A1", q.Encode(), "no limit: every candidate")
	for _, bad := range []Request{{}, {Resources: Resources{VCPU: 0}}, {Resources: Resources{"vcpu": 1}}, {Resources: Resources{VCPU: 1}, Required: []string{"a b"}}} {
		_, err := bad.query(0)
		require.ErrorIs(t, err, ErrInvalidArgument, "%+v", bad)
	}
}

func TestWeighers(t *testing.T) {
	req := Request{Resources: Resources{VCPU: 1}}
	empty := Candidate{Usage: map[string]Usage{VCPU: {Capacity: 10, Used: 0}}}
	busy := Candidate{Usage: map[string]Usage{VCPU: {Capacity: 10, Used: 8}}}
	assert.Greater(t, Spread.Weigh(req, empty), Spread.Weigh(req, busy))
	assert.Greater(t, Pack.Weigh(req, busy), Pack.Weigh(req, empty))
	assert.Zero(t, Spread.Weigh(req, Candidate{}), "no usage known")
}

func TestCovers(t *testing.T) {
	want := InstanceResources(1, 64, 0)
	assert.True(t, covers(Resources{VCPU: 1, MemoryMB: 64}, want))
	assert.True(t, covers(Resources{VCPU: 1, MemoryMB: 64, DiskGB: 5}, want), "extra classes of the claim are kept")
	assert.False(t, covers(Resources{VCPU: 2, MemoryMB: 64}, want))
	assert.False(t, covers(Resources{VCPU: 1, MemoryMB: 64}, InstanceResources(1, 0, 0)), "memory claimed for an instance without a limit")
	assert.Equal(t, Resources{VCPU: 1}, InstanceResources(0, 0, 0))
}
