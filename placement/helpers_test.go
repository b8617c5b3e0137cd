package placement_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/placement/v1/resourceproviders"
	"github.com/gophercloud/gophercloud/v2/openstack/placement/v1/traits"
	"github.com/stretchr/testify/require"

	"github.com/dockervisor/dockervisor/hypervisor"
	"github.com/dockervisor/dockervisor/hypervisor/docker"
	"github.com/dockervisor/dockervisor/internal/testenv"
	"github.com/dockervisor/dockervisor/placement"
)

// newClient returns a noauth client of the shared private Placement.
func newClient(t testing.TB) (*gophercloud.ServiceClient, string) {
	t.Helper()
	ep := testenv.MustHavePlacement(t)
	c, err := placement.NewNoAuthClient(ep, testenv.PlacementToken)
	require.NoError(t, err)
	return c, ep
}

// newDriver returns a Driver of engine e with a label prefix of its own,
// so that it sees only the instances of this test. The instances it
// spawned are destroyed when the test ends.
func newDriver(t testing.TB, e *testenv.Engine, node string) *docker.Driver {
	t.Helper()
	opts := []docker.Option{
		docker.WithStateDir(t.TempDir()),
		docker.WithLabelPrefix(testenv.UniqueName("t") + "."),
		docker.WithNodeName(node),
	}
	if e.TCP != "" {
		opts = append(opts, docker.WithDockerHost(e.TCP), docker.WithTLS(docker.TLSConfig{
			CAFile: e.TLS.CAFile, CertFile: e.TLS.CertFile, KeyFile: e.TLS.KeyFile,
		}))
	} else {
		opts = append(opts, docker.WithDockerHost(e.Socket))
	}
	d, err := docker.New(opts...)
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx := context.WithoutCancel(t.Context())
		if list, err := d.List(ctx, hypervisor.ListOptions{}); err == nil {
			for _, in := range list {
				_ = d.Destroy(ctx, in.ID)
			}
		}
		_ = d.Close()
	})
	return d
}

// newReporter returns a Reporter of d tagged with trait, whose provider
// is deleted (with its allocations) when the test ends.
func newReporter(t testing.TB, c *gophercloud.ServiceClient, d placement.HostDriver, trait string, opts ...placement.ReporterOption) *placement.Reporter {
	t.Helper()
	opts = append([]placement.ReporterOption{
		placement.WithStateFile(filepath.Join(t.TempDir(), "node.json")),
		placement.WithTraits(trait),
	}, opts...)
	r, err := placement.NewReporter(c, d, opts...)
	require.NoError(t, err)
	t.Cleanup(func() { deleteProvider(t, c, r) })
	return r
}

// deleteProvider releases every allocation on r's provider and deletes it.
func deleteProvider(t testing.TB, c *gophercloud.ServiceClient, r *placement.Reporter) {
	t.Helper()
	uuid, err := r.NodeUUID()
	if err != nil {
		return
	}
	deleteProviderUUID(t, c, uuid)
}

// deleteProviderUUID releases every allocation on provider uuid and
// deletes it.
func deleteProviderUUID(t testing.TB, c *gophercloud.ServiceClient, uuid string) {
	t.Helper()
	ctx := context.WithoutCancel(t.Context())
	held, err := placement.ProviderAllocations(ctx, c, uuid)
	if err == nil {
		cl, _ := placement.NewClaimer(c, placement.Owner{})
		for consumer := range held {
			if err := cl.Release(ctx, consumer); err != nil {
				t.Errorf("cleanup: release %s: %v", consumer, err)
			}
		}
	}
	if err := placement.DeleteProvider(ctx, c, uuid); err != nil {
		t.Errorf("cleanup: delete provider %s: %v", uuid, err)
	}
}

// busyboxSpec is a sleeping instance of the shared engines' image.
func busyboxSpec(id string) hypervisor.InstanceSpec {
	return hypervisor.InstanceSpec{
		ID:       id,
		Image:    testenv.EngineBusybox,
		Command:  []string{"sleep", "3600"},
		VCPUs:    1,
		MemoryMB: 64,
	}
}

// newBareProviders registers n providers without engines, as a Reporter
// would (VCPU and MEMORY_MB inventory, the custom trait), and deletes
// them (with their allocations) when the test ends.
func newBareProviders(t testing.TB, c *gophercloud.ServiceClient, n int, trait string, vcpus int) []string {
	t.Helper()
	ctx := t.Context()
	require.NoError(t, traits.Create(ctx, c, trait).ExtractErr())
	prefix := testenv.UniqueName("bare-")
	out := make([]string, n)
	for i := range out {
		uuid := placement.NewUUID()
		_, err := resourceproviders.Create(ctx, c, resourceproviders.CreateOpts{Name: fmt.Sprintf("%s-%d", prefix, i), UUID: uuid}).Extract()
		require.NoError(t, err)
		t.Cleanup(func() { deleteProviderUUID(t, c, uuid) })
		inv, err := resourceproviders.UpdateInventories(ctx, c, uuid, resourceproviders.UpdateInventoriesOpts{
			ResourceProviderGeneration: 0,
			Inventories: map[string]placement.Inventory{
				placement.VCPU:     {Total: vcpus, AllocationRatio: 1, MinUnit: 1, MaxUnit: vcpus, StepSize: 1},
				placement.MemoryMB: {Total: 65536, AllocationRatio: 1, MinUnit: 1, MaxUnit: 65536, StepSize: 1},
			},
		}).Extract()
		require.NoError(t, err)
		_, err = resourceproviders.UpdateTraits(ctx, c, uuid, resourceproviders.UpdateTraitsOpts{
			ResourceProviderGeneration: inv.ResourceProviderGeneration,
			Traits:                     []string{trait},
		}).Extract()
		require.NoError(t, err)
		out[i] = uuid
	}
	return out
}
