package hypervisor

import "context"

// SpawnOptions tunes [Creator.SpawnWithOptions]. The zero value spawns as
// [Lifecycle.Spawn] does.
type SpawnOptions struct {
	// CreateOnly creates the instance (image ensured, limits set, the host
	// side of its VIFs plugged where the backend plugs VIFs) and leaves it
	// in [StateCreated], without starting its process, so that an agent can
	// wait for its ports to be ready before [Lifecycle.PowerOn]. A created
	// instance is listed, reported by Info and valid in the states of the
	// state table that name created.
	CreateOnly bool
}

// Creator spawns instances with options.
type Creator interface {
	// SpawnWithOptions is Spawn, tuned by opts. With opts.CreateOnly the
	// instance is left in StateCreated; PowerOn starts it. Errors and
	// rollback are those of Spawn.
	SpawnWithOptions(ctx context.Context, spec InstanceSpec, opts SpawnOptions) (Instance, error)
}
