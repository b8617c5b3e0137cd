package placement

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/placement/v1/resourceproviders"
	"github.com/gophercloud/gophercloud/v2/openstack/placement/v1/traits"
)

// TraitDisabled marks a disabled compute node. It is the standard trait
// Nova itself sets on the provider of a disabled compute service, and
// this package's schedulers ask for candidates without it (a forbidden
// trait, "required=!COMPUTE_STATUS_DISABLED"), so Nova's and Zun's
// schedulers honour it as well. The inventory is left as it is: the
// instances on a disabled host keep their allocations until they are
// moved or destroyed.
const TraitDisabled = "COMPUTE_STATUS_DISABLED"

// maxGenerationRetries bounds the retries of a write that meets a
// resource-provider generation conflict.
const maxGenerationRetries = 10

// Inventory is one resource class's inventory of a provider, in
// Placement's terms.
type Inventory = resourceproviders.Inventory

// GetProvider returns the resource provider with uuid. It returns
// ErrNotFound if there is none.
func GetProvider(ctx context.Context, c *gophercloud.ServiceClient, uuid string) (resourceproviders.ResourceProvider, error) {
	rp, err := resourceproviders.Get(ctx, c, uuid).Extract()
	if err != nil {
		return resourceproviders.ResourceProvider{}, classify("get provider "+uuid, err)
	}
	return *rp, nil
}

// ensureProvider creates the provider uuid named name, or renames it.
func ensureProvider(ctx context.Context, c *gophercloud.ServiceClient, uuid, name string) (resourceproviders.ResourceProvider, error) {
	rp, err := GetProvider(ctx, c, uuid)
	switch {
	case err == nil && rp.Name == name:
		return rp, nil
	case err == nil:
		up, err := resourceproviders.Update(ctx, c, uuid, resourceproviders.UpdateOpts{Name: &name}).Extract()
		if err != nil {
			return rp, classify("rename provider "+uuid, err)
		}
		return *up, nil
	case !isNotFound(err):
		return rp, err
	}
	cr, err := resourceproviders.Create(ctx, c, resourceproviders.CreateOpts{Name: name, UUID: uuid}).Extract()
	if err != nil {
		// A concurrent reporter of the same node may have created it.
		if again, gerr := GetProvider(ctx, c, uuid); gerr == nil && again.Name == name {
			return again, nil
		}
		return rp, fmt.Errorf("%s (a provider named %q may exist with another UUID): %w", "create provider", name, classify("create provider "+uuid, err))
	}
	return *cr, nil
}

// setInventories replaces the provider's inventories with inv, unless
// they are equal already, retrying on generation conflicts.
func setInventories(ctx context.Context, c *gophercloud.ServiceClient, uuid string, inv map[string]Inventory) (changed bool, err error) {
	for range maxGenerationRetries {
		cur, err := resourceproviders.GetInventories(ctx, c, uuid).Extract()
		if err != nil {
			return false, classify("get inventories "+uuid, err)
		}
		if maps.Equal(cur.Inventories, inv) {
			return false, nil
		}
		_, err = resourceproviders.UpdateInventories(ctx, c, uuid, resourceproviders.UpdateInventoriesOpts{
			ResourceProviderGeneration: cur.ResourceProviderGeneration,
			Inventories:                inv,
		}).Extract()
		if err == nil {
			return true, nil
		}
		if !isGenerationConflict(err) {
			return false, classify("set inventories "+uuid, err)
		}
	}
	return false, fmt.Errorf("%w: set inventories %s: generation conflicts after %d tries", ErrConflict, uuid, maxGenerationRetries)
}

// updateTraits applies edit to the provider's traits and writes them
// back when they changed, retrying on generation conflicts. Custom traits
// are created first.
func updateTraits(ctx context.Context, c *gophercloud.ServiceClient, uuid string, edit func(map[string]bool)) error {
	for range maxGenerationRetries {
		cur, err := resourceproviders.GetTraits(ctx, c, uuid).Extract()
		if err != nil {
			return classify("get traits "+uuid, err)
		}
		set := make(map[string]bool, len(cur.Traits))
		for _, t := range cur.Traits {
			set[t] = true
		}
		before := maps.Clone(set)
		edit(set)
		if maps.Equal(before, set) {
			return nil
		}
		want := slices.Sorted(maps.Keys(set))
		if err := ensureCustomTraits(ctx, c, want); err != nil {
			return err
		}
		_, err = resourceproviders.UpdateTraits(ctx, c, uuid, resourceproviders.UpdateTraitsOpts{
			ResourceProviderGeneration: cur.ResourceProviderGeneration,
			Traits:                     want,
		}).Extract()
		if err == nil {
			return nil
		}
		if !isGenerationConflict(err) {
			return classify("set traits "+uuid, err)
		}
	}
	return fmt.Errorf("%w: set traits %s: generation conflicts after %d tries", ErrConflict, uuid, maxGenerationRetries)
}

// customTraits remembers, per Placement endpoint, the custom traits known
// to exist, so each is created once per process.
var customTraits sync.Map // endpoint+"\x00"+trait -> struct{}

func ensureCustomTraits(ctx context.Context, c *gophercloud.ServiceClient, names []string) error {
	for _, n := range names {
		if !strings.HasPrefix(n, "CUSTOM_") {
			continue
		}
		key := c.Endpoint + "\x00" + n
		if _, ok := customTraits.Load(key); ok {
			continue
		}
		if err := traits.Create(ctx, c, n).ExtractErr(); err != nil {
			return classify("create trait "+n, err)
		}
		customTraits.Store(key, struct{}{})
	}
	return nil
}

// SetProviderDisabled adds ([TraitDisabled]) or removes the disabled mark
// of a provider, keeping its other traits. It is idempotent.
func SetProviderDisabled(ctx context.Context, c *gophercloud.ServiceClient, uuid string, disabled bool) error {
	return updateTraits(ctx, c, uuid, func(set map[string]bool) {
		if disabled {
			set[TraitDisabled] = true
		} else {
			delete(set, TraitDisabled)
		}
	})
}

// ProviderAllocations returns the allocations held on a provider, by
// consumer UUID.
func ProviderAllocations(ctx context.Context, c *gophercloud.ServiceClient, uuid string) (map[string]Resources, error) {
	a, err := resourceproviders.GetAllocations(ctx, c, uuid).Extract()
	if err != nil {
		return nil, classify("get allocations of provider "+uuid, err)
	}
	out := make(map[string]Resources, len(a.Allocations))
	for consumer, al := range a.Allocations {
		out[consumer] = Resources(al.Resources)
	}
	return out, nil
}

// DeleteProvider deletes a resource provider. It returns nil if the
// provider does not exist, and ErrConflict while it holds allocations.
func DeleteProvider(ctx context.Context, c *gophercloud.ServiceClient, uuid string) error {
	err := resourceproviders.Delete(ctx, c, uuid).ExtractErr()
	if err != nil && gophercloud.ResponseCodeIs(err, 404) {
		return nil
	}
	return classify("delete provider "+uuid, err)
}

func isNotFound(err error) bool { return err != nil && errors.Is(err, ErrNotFound) }

func getInventories(ctx context.Context, c *gophercloud.ServiceClient, uuid string) (map[string]Inventory, error) {
	cur, err := resourceproviders.GetInventories(ctx, c, uuid).Extract()
	if err != nil {
		return nil, classify("get inventories "+uuid, err)
	}
	return cur.Inventories, nil
}

func getTraits(ctx context.Context, c *gophercloud.ServiceClient, uuid string) ([]string, error) {
	cur, err := resourceproviders.GetTraits(ctx, c, uuid).Extract()
	if err != nil {
		return nil, classify("get traits "+uuid, err)
	}
	slices.Sort(cur.Traits)
	return cur.Traits, nil
}
