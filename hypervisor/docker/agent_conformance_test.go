package docker

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/moby/moby/client"
	"github.com/stretchr/testify/require"

	"github.com/dockervisor/dockervisor/hypervisor"
	"github.com/dockervisor/dockervisor/hypervisor/hypervisortest"
	"github.com/dockervisor/dockervisor/image"
	"github.com/dockervisor/dockervisor/image/localdir"
	"github.com/dockervisor/dockervisor/internal/testenv"
	"github.com/dockervisor/dockervisor/internal/undo"
)

// agentEventBuffer is the event bound of the drivers of
// TestAgentConformance, small so that the slow-consumer check is quick.
const agentEventBuffer = 8

// memoryHog fills 24 MiB of the instance's /dev/shm (tmpfs, charged to
// its memory cgroup) and then runs until stopped.
var memoryHog = []string{"sh", "-c", "dd if=/dev/zero of=/dev/shm/fill bs=1M count=24 2>/dev/null; trap 'exit 0' TERM; sleep 3600 & wait"}

// agentFixture is what the subtests of TestAgentConformance share: a
// private engine (restarted by the engine-restart checks) and an image
// store holding a busybox image saved by that engine.
type agentFixture struct {
	eng     *testenv.Engine
	store   *localdir.Store
	tarball []byte
	image   string // store ID every harness spawns from
}

func newAgentFixture(t *testing.T) *agentFixture {
	t.Helper()
	eng := testenv.StartEngine(t, testenv.EngineOptions{})
	ld, err := localdir.New(t.TempDir())
	require.NoError(t, err)
	f := &agentFixture{eng: eng, store: ld, tarball: savedImage(t, eng.Client, "agent")}
	f.image = f.addStoreImage(t)
	return f
}

func (f *agentFixture) addStoreImage(t *testing.T) string {
	t.Helper()
	id := testenv.UniqueName("img-")
	_, err := f.store.Create(t.Context(), image.Metadata{ID: id, Name: "busybox", ContainerFormat: "docker", DiskFormat: "raw"}, bytes.NewReader(f.tarball))
	require.NoError(t, err)
	return id
}

// harness returns an AgentHarness for a new Driver on the fixture's
// engine with prefixes and a state directory of its own.
func (f *agentFixture) harness(t *testing.T) hypervisortest.AgentHarness {
	uniq := testenv.UniqueName("a")
	dir := t.TempDir()
	opts := []Option{
		WithDockerHost(f.eng.Socket),
		WithLabelPrefix("io.dockervisor." + uniq + "."),
		WithNamePrefix("dv-" + uniq + "-"),
		WithStateDir(dir),
		WithStopTimeout(2 * time.Second),
		WithImageStore(f.store),
		WithEventBuffer(agentEventBuffer),
	}
	d, err := New(opts...)
	require.NoError(t, err)
	cli := f.eng.Client
	return hypervisortest.AgentHarness{
		Harness: hypervisortest.Harness{
			Driver:  d,
			Image:   f.image,
			Command: sleeper,
			Crash: func(t *testing.T, id string) {
				info, err := d.Info(t.Context(), id)
				require.NoError(t, err)
				crashGuest(t, cli, info.BackendID)
			},
		},
		MakeHalfSpawned: func(t *testing.T, spec hypervisor.InstanceSpec) {
			ctx := t.Context()
			api, err := d.engine(ctx)
			require.NoError(t, err)
			img, err := d.ensureImage(ctx, api, spec.Image)
			require.NoError(t, err)
			// A spawn that died after its create step.
			require.NoError(t, d.state.save(spec.ID, instanceRecord{Spawning: true, CreatedAt: time.Now().Add(-time.Minute)}))
			var u undo.Stack
			_, err = d.create(ctx, api, newContainerSpec(spec, img), &u)
			require.NoError(t, err)
			u.Release()
		},
		InterruptSnapshot: func(t *testing.T, id string) {
			interruptSnapshot(t, d, id)
		},
		MakeOrphanRecord: func(t *testing.T, id string) {
			require.NoError(t, d.state.save(id, instanceRecord{CreatedAt: time.Now().Add(-time.Minute), Intent: intentRunning}))
		},
		OrphanRecordExists: func(t *testing.T, id string) bool {
			_, ok, err := d.state.instances.Load(id)
			require.NoError(t, err)
			return ok
		},
		RestartEngine: func(t *testing.T) {
			require.NoError(t, f.eng.Restart())
		},
		MemoryInUseMB: 24,
		MemoryCommand: memoryHog,
		StoreImage:    f.addStoreImage(t),
		EventBuffer:   agentEventBuffer,
		Reopen: func(t *testing.T) hypervisor.AgentDriver {
			d2, err := New(opts...)
			require.NoError(t, err)
			t.Cleanup(func() { d2.Close() })
			return d2
		},
	}
}

// TestAgentConformance runs the AgentDriver conformance suite against
// the Docker backend on a private engine, which its engine-restart checks
// restart.
func TestAgentConformance(t *testing.T) {
	f := newAgentFixture(t)
	hypervisortest.TestAgentDriver(t, func(t *testing.T) hypervisortest.AgentHarness {
		return f.harness(t)
	})
	ctx := context.WithoutCancel(t.Context())
	list, err := f.eng.Client.ContainerList(ctx, client.ContainerListOptions{All: true})
	require.NoError(t, err)
	require.Empty(t, list.Items, "the suite left containers behind")
}

// interruptSnapshot leaves running instance id as a snapshot whose agent
// died between its pause and its unpause leaves it: its record's journal
// names a snapshot that paused it (owner gone), and the engine has it
// paused.
func interruptSnapshot(t *testing.T, d *Driver, id string) {
	t.Helper()
	ctx := t.Context()
	api, err := d.engine(ctx)
	require.NoError(t, err)
	c, err := d.inspect(ctx, api, id)
	require.NoError(t, err)
	rec, err := d.state.load(id)
	require.NoError(t, err)
	prev := rec
	rec.Pending = &pendingOp{Op: pendSnapshot, Owner: deadOwner, Since: time.Now(), Prev: &prev, Paused: true}
	require.NoError(t, d.state.save(id, rec))
	_, err = api.ContainerPause(ctx, c.ID, client.ContainerPauseOptions{})
	require.NoError(t, err)
}

// deadOwner owns the journals of operations whose process died.
var deadOwner = opOwner{PID: -1, Driver: "dead"}
