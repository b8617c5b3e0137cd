package docker

import (
	"os"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dockervisor/dockervisor/hypervisor"
	"github.com/dockervisor/dockervisor/internal/testenv"
)

func TestSpawnInfoDestroy(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	spec := e.spec("a1")
	spec.VCPUs, spec.MemoryMB, spec.HardCPULimit = 2, 96, true
	spec.Env = map[string]string{"GREETING": "hi"}
	spec.Labels = map[string]string{"tenant": "blue"}
	spec.Metadata = map[string]string{"flavor": "m1.tiny"}
	inst := e.spawn(spec)
	assert.Equal(t, hypervisor.StateRunning, inst.State)
	assert.Positive(t, inst.PID)
	assert.Equal(t, "vm-a1", inst.Name)
	assert.Equal(t, spec.Labels, inst.Labels)
	assert.Equal(t, spec.Metadata, inst.Metadata)

	c := e.inspect("a1")
	assert.Equal(t, "vm-a1", c.Config.Hostname)
	assert.Contains(t, c.Config.Env, "GREETING=hi")
	assert.EqualValues(t, "none", c.HostConfig.NetworkMode)
	assert.True(t, c.Config.NetworkDisabled, "the engine's network stack has nothing to do")
	assert.FileExists(t, e.drv.hostsPath("a1"))
	assert.EqualValues(t, 2048, c.HostConfig.CPUShares)
	assert.EqualValues(t, 2e9, c.HostConfig.NanoCPUs)
	assert.EqualValues(t, 96<<20, c.HostConfig.Memory)
	assert.Equal(t, inst.BackendID, c.ID)

	info, err := e.drv.Info(ctx, "a1")
	require.NoError(t, err)
	assert.Equal(t, hypervisor.StateRunning, info.State)
	assert.EqualValues(t, 96<<20, info.MaxMemoryBytes)
	assert.Positive(t, info.MemoryBytes, "a running shell uses memory")
	assert.Less(t, info.MemoryBytes, info.MaxMemoryBytes)
	assert.Positive(t, info.CPUTime, "starting a shell costs CPU time")
	assert.Equal(t, 2, info.VCPUs)

	require.NoError(t, e.drv.Destroy(ctx, "a1"))
	assert.Zero(t, e.containersNamed(e.drv.containerName("a1")))
	assert.NoFileExists(t, e.recordPath("a1"))
	assert.NoFileExists(t, e.drv.hostsPath("a1"), "the hosts file goes with the instance")
	_, err = e.drv.Info(ctx, "a1")
	assert.ErrorIs(t, err, hypervisor.ErrNotFound)
	require.NoError(t, e.drv.Destroy(ctx, "a1"), "destroy is idempotent")
}

func TestUnlimitedMemoryReportsHostMemory(t *testing.T) {
	e := newEnv(t)
	spec := e.spec("unl")
	spec.MemoryMB, spec.VCPUs = 0, 0
	e.spawn(spec)
	info, err := e.drv.Info(t.Context(), "unl")
	require.NoError(t, err)
	info2, err := e.cli.Info(t.Context(), client.InfoOptions{})
	require.NoError(t, err)
	assert.EqualValues(t, info2.Info.MemTotal, info.MaxMemoryBytes)
	assert.Equal(t, 1, info.VCPUs, "zero vCPUs means one")
	assert.EqualValues(t, 1024, e.inspect("unl").HostConfig.CPUShares)
}

// TestLimitsHoldAfterEveryTransition checks the flavor's limits in the
// kernel's cgroup of the instance's process after each transition that
// starts it, not just in the engine's stored config.
func TestLimitsHoldAfterEveryTransition(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	spec := e.spec("lim")
	spec.VCPUs, spec.MemoryMB, spec.HardCPULimit = 2, 80, true
	e.spawn(spec)
	check := func(after string) {
		t.Helper()
		info, err := e.drv.Info(ctx, "lim")
		require.NoError(t, err, after)
		require.Equal(t, hypervisor.StateRunning, info.State, after)
		assert.Equal(t, wantLimits(2, 2, 80), readKernelLimits(t, e.inspect("lim")), "limits after %s", after)
	}
	check("spawn")
	require.NoError(t, e.drv.Reboot(ctx, "lim", hypervisor.RebootOptions{}))
	check("soft reboot")
	require.NoError(t, e.drv.Reboot(ctx, "lim", hypervisor.RebootOptions{Hard: true}))
	check("hard reboot")
	require.NoError(t, e.drv.PowerOff(ctx, "lim", hypervisor.StopOptions{}))
	require.NoError(t, e.drv.PowerOn(ctx, "lim"))
	check("power off/on")
	require.NoError(t, e.drv.SoftDelete(ctx, "lim"))
	require.NoError(t, e.drv.Restore(ctx, "lim"))
	check("soft delete/restore")
	require.NoError(t, e.drv.Pause(ctx, "lim"))
	require.NoError(t, e.drv.Unpause(ctx, "lim"))
	check("pause/unpause")
}

func TestTransitionsReachRealStates(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	inst := e.spawn(e.spec("tr"))

	require.NoError(t, e.drv.Pause(ctx, "tr"))
	assert.Equal(t, hypervisor.StatePaused, e.state("tr"), "a paused container is paused, not running")
	assert.True(t, e.inspect("tr").State.Paused)
	err := e.drv.PowerOn(ctx, "tr")
	var se *hypervisor.StateError
	require.ErrorAs(t, err, &se)
	assert.Equal(t, hypervisor.StatePaused, se.Current)
	assert.ErrorIs(t, err, hypervisor.ErrInvalidState)
	require.NoError(t, e.drv.Unpause(ctx, "tr"))
	assert.Equal(t, hypervisor.StateRunning, e.state("tr"))

	// A graceful power-off of a paused instance thaws it first.
	require.NoError(t, e.drv.Pause(ctx, "tr"))
	require.NoError(t, e.drv.PowerOff(ctx, "tr", hypervisor.StopOptions{Timeout: 5 * time.Second}))
	c := e.inspect("tr")
	assert.False(t, c.State.Running)
	assert.Equal(t, 0, c.State.ExitCode, "the guest handled SIGTERM")
	assert.Equal(t, hypervisor.StateShutdown, e.state("tr"))
	require.ErrorIs(t, e.drv.Pause(ctx, "tr"), hypervisor.ErrInvalidState)

	require.NoError(t, e.drv.PowerOn(ctx, "tr"))
	assert.Equal(t, hypervisor.StateRunning, e.state("tr"))
	assert.Equal(t, inst.BackendID, e.inspect("tr").ID, "power-on reuses the container")

	// A kill by timeout is still a power-off, not a crash.
	require.NoError(t, e.drv.PowerOff(ctx, "tr", hypervisor.StopOptions{Timeout: -1}))
	assert.Equal(t, 137, e.inspect("tr").State.ExitCode)
	assert.Equal(t, hypervisor.StateShutdown, e.state("tr"))

	require.NoError(t, e.drv.Reboot(ctx, "tr", hypervisor.RebootOptions{Hard: true}), "hard reboot starts a stopped instance")
	assert.Equal(t, hypervisor.StateRunning, e.state("tr"))
	require.NoError(t, e.drv.PowerOff(ctx, "tr", hypervisor.StopOptions{}))
	require.ErrorIs(t, e.drv.Reboot(ctx, "tr", hypervisor.RebootOptions{}), hypervisor.ErrInvalidState, "soft reboot needs a running instance")
}

func TestCrashedAndShutdownByExitStatus(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	crash := e.spec("crash")
	crash.Command = []string{"sh", "-c", "sleep 0.2; exit 3"}
	e.spawn(crash)
	clean := e.spec("clean")
	clean.Command = []string{"sh", "-c", "sleep 0.2; exit 0"}
	e.spawn(clean)
	require.Eventually(t, func() bool {
		return !e.inspect("crash").State.Running && !e.inspect("clean").State.Running
	}, 20*time.Second, 50*time.Millisecond)

	info, err := e.drv.Info(ctx, "crash")
	require.NoError(t, err)
	assert.Equal(t, hypervisor.StateCrashed, info.State)
	assert.Equal(t, 3, info.ExitCode)
	assert.Zero(t, info.PID)
	assert.Equal(t, hypervisor.StateShutdown, e.state("clean"))

	list, err := e.drv.List(ctx, hypervisor.ListOptions{States: []hypervisor.State{hypervisor.StateCrashed}})
	require.NoError(t, err)
	require.Len(t, list, 1)
	assert.Equal(t, "crash", list[0].ID)
	assert.Equal(t, 3, list[0].ExitCode)

	require.NoError(t, e.drv.PowerOn(ctx, "crash"), "a crashed instance can be powered on")
}

func TestSoftDeleteAndRestoreSurviveAgentRestart(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	spec := e.spec("sd")
	spec.Metadata = map[string]string{"k": "v"}
	e.spawn(spec)
	require.NoError(t, e.drv.SoftDelete(ctx, "sd"))
	assert.Equal(t, hypervisor.StateSoftDeleted, e.state("sd"))
	assert.False(t, e.inspect("sd").State.Running)
	require.NoError(t, e.drv.SoftDelete(ctx, "sd"), "soft delete is idempotent")
	require.ErrorIs(t, e.drv.PowerOn(ctx, "sd"), hypervisor.ErrInvalidState)

	// The agent restarts: a new Driver on the same state directory sees
	// every instance exactly as before.
	before, err := e.drv.List(ctx, hypervisor.ListOptions{})
	require.NoError(t, err)
	require.NoError(t, e.drv.Close())
	d2 := e.newDriver()
	after, err := d2.List(ctx, hypervisor.ListOptions{})
	require.NoError(t, err)
	assert.Equal(t, before, after)
	info, err := d2.Info(ctx, "sd")
	require.NoError(t, err)
	assert.Equal(t, hypervisor.StateSoftDeleted, info.State)
	assert.Equal(t, spec.Metadata, info.Metadata)

	require.NoError(t, d2.Restore(ctx, "sd"))
	info, err = d2.Info(ctx, "sd")
	require.NoError(t, err)
	assert.Equal(t, hypervisor.StateRunning, info.State)
	require.ErrorIs(t, d2.Restore(ctx, "sd"), hypervisor.ErrInvalidState, "restore needs a soft-deleted instance")
	require.NoError(t, d2.Destroy(ctx, "sd"))
}

func TestListOnlyOwnInstances(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	other := newEnv(t) // another driver on the same engine, other prefix
	e.spawn(e.spec("mine"))
	other.spawn(other.spec("theirs"))

	// A container made behind the driver's back, even one carrying a
	// look-alike label, is not an instance.
	res, err := e.cli.ContainerCreate(ctx, client.ContainerCreateOptions{
		Image:  e.image,
		Name:   testenv.UniqueName("foreign-"),
		Config: &container.Config{Cmd: sleeper, Labels: map[string]string{e.drv.label(labelInstanceID): "fake"}},
	})
	require.NoError(t, err)
	testenv.RemoveContainerOnCleanup(t, e.cli, res.ID)

	list, err := e.drv.List(ctx, hypervisor.ListOptions{})
	require.NoError(t, err)
	require.Len(t, list, 1)
	assert.Equal(t, "mine", list[0].ID)
	_, err = e.drv.Info(ctx, "theirs")
	assert.ErrorIs(t, err, hypervisor.ErrNotFound)
	_, err = e.drv.Info(ctx, "fake")
	assert.ErrorIs(t, err, hypervisor.ErrNotFound)
}

func TestListFilters(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	a := e.spec("fa")
	a.Labels = map[string]string{"tier": "web"}
	b := e.spec("fb")
	b.Labels = map[string]string{"tier": "db"}
	e.spawn(a)
	e.spawn(b)
	require.NoError(t, e.drv.Pause(ctx, "fb"))

	list, err := e.drv.List(ctx, hypervisor.ListOptions{Labels: map[string]string{"tier": "db"}})
	require.NoError(t, err)
	require.Len(t, list, 1)
	assert.Equal(t, "fb", list[0].ID)
	assert.Equal(t, hypervisor.StatePaused, list[0].State)

	list, err = e.drv.List(ctx, hypervisor.ListOptions{States: []hypervisor.State{hypervisor.StateRunning}})
	require.NoError(t, err)
	require.Len(t, list, 1)
	assert.Equal(t, "fa", list[0].ID)
}

func TestBadInputLeavesNothing(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	cases := []struct {
		name string
		mod  func(*hypervisor.InstanceSpec)
		want error
	}{
		{"empty id", func(s *hypervisor.InstanceSpec) { s.ID = "" }, hypervisor.ErrInvalidArgument},
		{"id with slash", func(s *hypervisor.InstanceSpec) { s.ID = "a/b" }, hypervisor.ErrInvalidArgument},
		{"name docker would reject", func(s *hypervisor.InstanceSpec) { s.Name = "bad name!" }, hypervisor.ErrInvalidArgument},
		{"negative vcpus", func(s *hypervisor.InstanceSpec) { s.VCPUs = -1 }, hypervisor.ErrInvalidArgument},
		{"absurd vcpus", func(s *hypervisor.InstanceSpec) { s.VCPUs = 1 << 20 }, hypervisor.ErrInvalidArgument},
		{"negative memory", func(s *hypervisor.InstanceSpec) { s.MemoryMB = -5 }, hypervisor.ErrInvalidArgument},
		{"memory below engine minimum", func(s *hypervisor.InstanceSpec) { s.MemoryMB = 1 }, hypervisor.ErrInvalidArgument},
		{"absurd memory", func(s *hypervisor.InstanceSpec) { s.MemoryMB = 1 << 40 }, hypervisor.ErrInvalidArgument},
		{"reserved label", func(s *hypervisor.InstanceSpec) { s.Labels = map[string]string{e.drv.label("x"): "y"} }, hypervisor.ErrInvalidArgument},
		{"image not on engine", func(s *hypervisor.InstanceSpec) { s.Image = "dockervisor-test/absent:none" }, hypervisor.ErrImageNotFound},
		{"command not in image", func(s *hypervisor.InstanceSpec) { s.Command = []string{"/no/such/binary"} }, hypervisor.ErrInvalidArgument},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			spec := e.spec("bad")
			tc.mod(&spec)
			_, err := e.drv.Spawn(ctx, spec)
			require.Error(t, err)
			assert.ErrorIs(t, err, tc.want)
			var oe *hypervisor.OpError
			require.ErrorAs(t, err, &oe)
			assert.Equal(t, "spawn", oe.Op)
			if spec.ID != "" {
				assert.Zero(t, e.containersNamed(e.drv.containerName(spec.ID)), "no container left behind")
				assert.NoFileExists(t, e.recordPath(spec.ID), "no state left behind")
			}
		})
	}
	list, err := e.drv.List(ctx, hypervisor.ListOptions{})
	require.NoError(t, err)
	assert.Empty(t, list)
}

func TestSpawnStepsAndRollback(t *testing.T) {
	e := newEnv(t)
	var mu sync.Mutex
	var steps []string
	e.drv.stepHook = func(s string) { mu.Lock(); steps = append(steps, s); mu.Unlock() }
	e.spawn(e.spec("ok"))
	assert.Equal(t, []string{StepValidate, StepEnsureImage, StepCreate, StepPlugVIFs, StepStart, StepAttachVIFs}, steps)

	steps = nil
	spec := e.spec("failstart")
	spec.Command = []string{"/no/such/binary"}
	_, err := e.drv.Spawn(t.Context(), spec)
	require.Error(t, err)
	assert.Equal(t, []string{StepValidate, StepEnsureImage, StepCreate, StepPlugVIFs, StepStart}, steps)
	assert.Zero(t, e.containersNamed(e.drv.containerName("failstart")), "the created container was rolled back")
	_, statErr := os.Stat(e.recordPath("failstart"))
	assert.ErrorIs(t, statErr, os.ErrNotExist)
}

func TestDuplicateSpawn(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	first := e.spawn(e.spec("dup"))
	again := e.spec("dup")
	again.MemoryMB = 128
	_, err := e.drv.Spawn(ctx, again)
	require.ErrorIs(t, err, hypervisor.ErrAlreadyExists)
	c := e.inspect("dup")
	assert.Equal(t, first.BackendID, c.ID)
	assert.True(t, c.State.Running)
	assert.EqualValues(t, 64<<20, c.HostConfig.Memory, "the existing instance is untouched")

	// Concurrent spawns of one ID: exactly one wins.
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = e.drv.Spawn(ctx, e.spec("race"))
		}()
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		if err == nil {
			ok++
		} else {
			assert.ErrorIs(t, err, hypervisor.ErrAlreadyExists)
		}
	}
	assert.Equal(t, 1, ok)
	assert.Equal(t, 1, e.containersNamed(e.drv.containerName("race")))
}

func TestDifferentInstancesRunConcurrently(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	var wg sync.WaitGroup
	ids := []string{"c1", "c2", "c3"}
	for _, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := e.drv.Spawn(ctx, e.spec(id))
			assert.NoError(t, err)
		}()
	}
	wg.Wait()
	// Held lock on c1 does not block c2.
	unlock, err := e.drv.locks.Lock(ctx, "c1")
	require.NoError(t, err)
	require.NoError(t, e.drv.Pause(ctx, "c2"))
	unlock()
	list, err := e.drv.List(ctx, hypervisor.ListOptions{})
	require.NoError(t, err)
	assert.Len(t, list, 3)
}
