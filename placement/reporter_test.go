package placement_test

import (
	"encoding/json"
	"errors"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dockervisor/dockervisor/hypervisor"
	"github.com/dockervisor/dockervisor/internal/testenv"
	"github.com/dockervisor/dockervisor/placement"
)

// TestReportHost reports a real engine's host and reads the provider back
// through Placement's API and the openstack CLI.
func TestReportHost(t *testing.T) {
	t.Parallel()
	c, ep := newClient(t)
	e := testenv.MustHaveEngines(t)[0]
	node := testenv.UniqueName("node-")
	d := newDriver(t, e, node)
	tag := placement.CustomTrait(testenv.UniqueName("t"))
	r := newReporter(t, c, d, tag)
	ctx := t.Context()

	st, err := r.Report(ctx)
	require.NoError(t, err)
	require.True(t, st.Changed)
	assert.Equal(t, node, st.Name)
	assert.False(t, st.Disabled)
	h, err := d.HostResources(ctx)
	require.NoError(t, err)

	// Placement's own view.
	var inv struct {
		Inventories map[string]placement.Inventory `json:"inventories"`
	}
	testenv.PlacementGet(t, ep, placement.Microversion, "/resource_providers/"+st.ProviderUUID+"/inventories", &inv)
	require.Contains(t, inv.Inventories, placement.VCPU)
	assert.Equal(t, placement.Inventory{Total: h.VCPUs, AllocationRatio: 16, MinUnit: 1, MaxUnit: h.VCPUs, StepSize: 1}, inv.Inventories[placement.VCPU])
	assert.Equal(t, placement.Inventory{Total: int(h.MemoryMB), Reserved: 512, AllocationRatio: 1.5, MinUnit: 1, MaxUnit: int(h.MemoryMB), StepSize: 1}, inv.Inventories[placement.MemoryMB])
	require.Positive(t, h.DiskGB)
	assert.Equal(t, int(h.DiskGB), inv.Inventories[placement.DiskGB].Total)
	var tr struct {
		Traits []string `json:"traits"`
	}
	testenv.PlacementGet(t, ep, placement.Microversion, "/resource_providers/"+st.ProviderUUID+"/traits", &tr)
	assert.ElementsMatch(t, append(placement.CapabilityTraits(d.Capabilities()), tag, "CUSTOM_HYPERVISOR_DOCKER"), tr.Traits)

	// The openstack CLI sees the provider too.
	out, err := exec.CommandContext(ctx, "openstack", "--os-auth-type", "admin_token", "--os-token", testenv.PlacementToken,
		"--os-endpoint", ep, "--os-placement-api-version", "1.39", "resource", "provider", "inventory", "list", st.ProviderUUID, "-f", "json").CombinedOutput()
	if errors.Is(err, exec.ErrNotFound) {
		testenv.Missing(t, "openstack CLI (python3-openstackclient, python3-osc-placement)")
	}
	require.NoError(t, err, "%s", out)
	var rows []struct {
		Class string `json:"resource_class"`
		Total int    `json:"total"`
	}
	require.NoError(t, json.Unmarshal(out, &rows), "%s", out)
	cli := map[string]int{}
	for _, r := range rows {
		cli[r.Class] = r.Total
	}
	assert.Equal(t, map[string]int{placement.VCPU: h.VCPUs, placement.MemoryMB: int(h.MemoryMB), placement.DiskGB: int(h.DiskGB)}, cli)

	// A second report changes nothing; the provider generation stays.
	before, err := placement.GetProvider(ctx, c, st.ProviderUUID)
	require.NoError(t, err)
	st2, err := r.Report(ctx)
	require.NoError(t, err)
	assert.False(t, st2.Changed)
	after, err := placement.GetProvider(ctx, c, st.ProviderUUID)
	require.NoError(t, err)
	assert.Equal(t, before.Generation, after.Generation)

	// Operator disable is kept across reports, and undone.
	require.NoError(t, r.SetDisabled(ctx, true))
	st3, err := r.Report(ctx)
	require.NoError(t, err)
	assert.True(t, st3.Disabled)
	require.NoError(t, r.SetDisabled(ctx, false))
	st4, err := r.Report(ctx)
	require.NoError(t, err)
	assert.False(t, st4.Disabled)
}

// TestNodeUUIDPersisted: a new Reporter with the same state file reports
// the same provider; the file is written once.
func TestNodeUUIDPersisted(t *testing.T) {
	t.Parallel()
	c, _ := newClient(t)
	d := newDriver(t, testenv.MustHaveEngines(t)[1], testenv.UniqueName("node-"))
	file := filepath.Join(t.TempDir(), "state", "node.json")
	tag := placement.CustomTrait(testenv.UniqueName("t"))
	r1 := newReporter(t, c, d, tag, placement.WithStateFile(file))
	st1, err := r1.Report(t.Context())
	require.NoError(t, err)
	r2, err := placement.NewReporter(c, d, placement.WithStateFile(file))
	require.NoError(t, err)
	u2, err := r2.NodeUUID()
	require.NoError(t, err)
	assert.Equal(t, st1.ProviderUUID, u2)
	st2, err := r2.Report(t.Context())
	require.NoError(t, err)
	assert.Equal(t, st1.ProviderUUID, st2.ProviderUUID)
	assert.False(t, st2.Changed, "same node, same figures: nothing to write")
}

// TestConcurrentReportersRetryOnGenerationConflict: reporters of one node
// with different policies race; every report succeeds (each write retries
// on a generation conflict) and the provider ends with one of the two
// inventories, whole.
func TestConcurrentReportersRetryOnGenerationConflict(t *testing.T) {
	t.Parallel()
	c, _ := newClient(t)
	d := newDriver(t, testenv.MustHaveEngines(t)[0], testenv.UniqueName("node-"))
	uuid := placement.NewUUID()
	tag := placement.CustomTrait(testenv.UniqueName("t"))
	var rs []*placement.Reporter
	for _, ratio := range []float32{2, 4} {
		rs = append(rs, newReporter(t, c, d, tag, placement.WithNodeUUID(uuid),
			placement.WithInventoryPolicy(placement.VCPU, placement.InventoryPolicy{AllocationRatio: ratio})))
	}
	_, err := rs[0].Report(t.Context())
	require.NoError(t, err)
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for i := range 20 {
		wg.Go(func() {
			_, err := rs[i%2].Report(t.Context())
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	st, err := rs[0].Report(t.Context())
	require.NoError(t, err)
	assert.Equal(t, float32(2), st.Inventory[placement.VCPU].AllocationRatio)
}

// TestEngineDownDisablesProvider kills a private engine: the next report
// marks its provider disabled (inventory and allocations kept) and says
// why; Placement no longer offers it.
func TestEngineDownDisablesProvider(t *testing.T) {
	t.Parallel()
	c, _ := newClient(t)
	e := testenv.StartEngine(t, testenv.EngineOptions{})
	d := newDriver(t, e, testenv.UniqueName("node-"))
	tag := placement.CustomTrait(testenv.UniqueName("t"))
	r := newReporter(t, c, d, tag)
	ctx := t.Context()
	st, err := r.Report(ctx)
	require.NoError(t, err)
	cl, err := placement.NewClaimer(c, placement.Owner{})
	require.NoError(t, err)
	s, err := placement.NewScheduler(cl, nil)
	require.NoError(t, err)
	req := placement.Request{Resources: placement.Resources{placement.VCPU: 1}, Required: []string{tag}}
	cands, err := s.Candidates(ctx, req)
	require.NoError(t, err)
	require.Len(t, cands, 1)

	e.Kill()
	down, err := r.Report(ctx)
	require.NoError(t, err)
	require.ErrorIs(t, down.EngineErr, hypervisor.ErrUnavailable)
	assert.True(t, down.Disabled)
	assert.Contains(t, down.Traits, placement.TraitDisabled)
	assert.Equal(t, st.Inventory, down.Inventory, "inventory kept for the instances it holds")
	cands, err = s.Candidates(ctx, req)
	require.NoError(t, err)
	assert.Empty(t, cands, "a disabled host is no candidate")
}
