package docker

import (
	"testing"

	"github.com/moby/moby/client"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dockervisor/dockervisor/hypervisor"
	"github.com/dockervisor/dockervisor/snapshot"
)

// crashAt runs op in a new world's agent on an instance brought to state
// (StateUnknown: drawn from the seed) and kills the agent at plan; it
// requires that the agent died there and that recovery (a new Driver:
// Reconcile with the remove policy, Resume) left the instance as before
// or as after the operation, with nothing leaked (see runTrial). It
// returns the world and a Driver on it, for the caller's checks.
func crashAt(t *testing.T, op string, state hypervisor.State, plan killPlan) (*crashWorld, crashTrial, *Driver) {
	t.Helper()
	t.Parallel()
	w := newCrashWorld(t, crashImages(t))
	w.state = state
	c, run, err := w.runTrial(t.Context(), 1, op, &plan)
	require.NoError(t, err)
	require.True(t, run.killed, "the agent was to die at %s, but finished (%d calls, error %q)", plan, run.calls, run.err)
	d, _ := w.driver()
	return w, c, d
}

// The failures a crash left before the intent journal, each replayed at
// the point where it happened.

// A rebuild killed after the new container was complete left the old one,
// set aside under another name, for ever.
func TestCrashRebuildLeavesNoSetAsideContainer(t *testing.T) {
	w, c, d := crashAt(t, "rebuild", hypervisor.StateRunning, killPlan{Mode: "step", Step: StepRebuildRemove})
	v, err := w.view(t.Context(), d, c.id)
	require.NoError(t, err)
	assert.Equal(t, c.after[0], v, "the rebuild was complete: as after it")
	assert.Zero(t, containersNamed(t, w, d.containerName(c.id)+rebuildAsideSuffix), "no set-aside container")
}

// A rebuild killed after the rename and before the new container existed
// made Reconcile drop the record while the file system sat in the
// set-aside container.
func TestCrashRebuildAfterSetAsideKeepsTheInstance(t *testing.T) {
	w, c, d := crashAt(t, "rebuild", hypervisor.StateRunning, killPlan{Mode: "step", Step: StepCreate})
	v, err := w.view(t.Context(), d, c.id)
	require.NoError(t, err)
	assert.Equal(t, c.before, v, "the old container is the instance again, running")
	assert.Equal(t, 1, containersNamed(t, w, d.containerName(c.id)))
}

// A rebuild killed after it stopped a running instance left it shut down.
func TestCrashRebuildAfterStopRunsAgain(t *testing.T) {
	w, c, d := crashAt(t, "rebuild", hypervisor.StateRunning, killPlan{Mode: "call", Method: "ContainerStop", When: "after"})
	v, err := w.view(t.Context(), d, c.id)
	require.NoError(t, err)
	assert.Equal(t, hypervisor.StateRunning, v.state)
	assert.Equal(t, c.before, v)
}

// A snapshot killed after its commit left the committed image on the
// engine for ever.
func TestCrashSnapshotLeavesNoCommittedImage(t *testing.T) {
	w, c, d := crashAt(t, "snapshot", hypervisor.StateRunning, killPlan{Mode: "call", Method: "ContainerCommit", When: "after"})
	v, err := w.view(t.Context(), d, c.id)
	require.NoError(t, err)
	assert.Equal(t, c.before, v, "undone: running, no snapshot in the store")
	imgs, err := w.cli.ImageList(t.Context(), client.ImageListOptions{Filters: make(client.Filters).Add("reference", snapshot.CommitRepository+":*").Add("label", d.label(labelInstanceID)+"="+c.id)})
	require.NoError(t, err)
	assert.Empty(t, imgs.Items, "no committed image")
}

// A snapshot killed while the engine commits: the commit ends after the
// agent's death, and its image still goes.
func TestCrashSnapshotDuringCommit(t *testing.T) {
	crashAt(t, "snapshot", hypervisor.StateRunning, killPlan{Mode: "call", Method: "ContainerCommit", When: "during", DelayUS: 500})
}

// A snapshot killed between its pause and its unpause left the instance
// paused, with nothing to tell its pause from a user's.
func TestCrashSnapshotUnpauses(t *testing.T) {
	w, c, d := crashAt(t, "snapshot", hypervisor.StateRunning, killPlan{Mode: "call", Method: "ContainerPause", When: "after"})
	v, err := w.view(t.Context(), d, c.id)
	require.NoError(t, err)
	assert.Equal(t, hypervisor.StateRunning, v.state, "the snapshot's pause is undone")
}

// ... and a user's pause stays.
func TestCrashSnapshotKeepsAUsersPause(t *testing.T) {
	w, c, d := crashAt(t, "snapshot", hypervisor.StatePaused, killPlan{Mode: "call", Method: "ContainerCommit", When: "after"})
	v, err := w.view(t.Context(), d, c.id)
	require.NoError(t, err)
	assert.Equal(t, hypervisor.StatePaused, v.state, "the user's pause stays")
}

// A soft delete killed 2 ms in left the record saying soft-deleted while
// the engine ran the instance.
func TestCrashSoftDeleteAgrees(t *testing.T) {
	crashAt(t, "soft-delete", hypervisor.StateRunning, killPlan{Mode: "call", Method: "ContainerStop", When: "before"})
}

// A destroy killed as it asked the engine for the removal: the engine
// goes on (showing the container running while it kills it), and the new
// Driver's Reconcile and Resume neither start it nor leave its record.
func TestCrashDestroyDuringRemoval(t *testing.T) {
	crashAt(t, "destroy", hypervisor.StateRunning, killPlan{Mode: "call", Method: "ContainerRemove", When: "during", DelayUS: 2000})
}

// A spawn killed as it asked the engine for the container: the engine
// creates it after the agent's death, and the half-made spawn still goes.
func TestCrashSpawnDuringCreate(t *testing.T) {
	crashAt(t, "spawn", hypervisor.StateUnknown, killPlan{Mode: "call", Method: "ContainerCreate", When: "during", DelayUS: 2000})
}

// A resize killed while the engine updates the limits is finished by the
// recovery: as after it. (Once, in the crash test, the engine applied such
// an update after the new Driver had put the old limits back, so the
// engine limited memory to the new size while the driver reported the
// old; the journal now says the update was sent, and the recovery sends
// it again instead of undoing it. This replays the kill point; the
// engine's timing decides whether it replays that race.)
func TestCrashResizeDuringUpdate(t *testing.T) {
	w, c, d := crashAt(t, "resize", hypervisor.StateRunning, killPlan{Mode: "call", Method: "ContainerUpdate", When: "during", DelayUS: 2000})
	v, err := w.view(t.Context(), d, c.id)
	require.NoError(t, err)
	assert.Equal(t, c.after[0], v, "the update was sent: the resize is finished")
}

// containersNamed counts the engine's containers named exactly name.
func containersNamed(t *testing.T, w *crashWorld, name string) int {
	t.Helper()
	res, err := w.cli.ContainerList(t.Context(), client.ContainerListOptions{All: true, Filters: make(client.Filters).Add("name", "^/"+name+"$")})
	require.NoError(t, err)
	return len(res.Items)
}
