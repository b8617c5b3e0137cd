package docker

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dockervisor/dockervisor/hypervisor"
	"github.com/dockervisor/dockervisor/internal/testenv"
)

// otherDriver returns a Driver with prefixes of its own on the same engine
// and the same state directory as e's, destroying its instances at the end.
func (e *env) otherDriver() *Driver {
	e.t.Helper()
	uniq := testenv.UniqueName("o")
	opts := []Option{
		WithLabelPrefix("io.dockervisor." + uniq + "."),
		WithNamePrefix("dv-" + uniq + "-"),
		WithStateDir(e.dir),
		WithStopTimeout(2 * time.Second),
	}
	other := &env{t: e.t, cli: e.cli, image: e.image, dir: e.dir, opts: opts}
	other.drv = other.newDriver()
	e.t.Cleanup(other.destroyAll)
	return other.drv
}

// Two drivers with different prefixes sharing a state directory keep their
// state apart: B's calls for an ID that only A has never touch A's record.
func TestDriversSharingStateDirKeepSeparateState(t *testing.T) {
	a := newEnv(t)
	ctx := t.Context()
	b := a.otherDriver()

	a.spawn(a.spec("x"))
	require.NoError(t, a.drv.SoftDelete(ctx, "x"))

	require.NoError(t, b.Destroy(ctx, "x"), "B has no x: a no-op")
	assert.Equal(t, hypervisor.StateSoftDeleted, a.state("x"), "B's Destroy left A's state alone")

	// B's own instance with the same ID lives and dies on its own record.
	_, err := b.Spawn(ctx, a.spec("x"))
	require.NoError(t, err)
	require.NoError(t, b.PowerOff(ctx, "x", hypervisor.StopOptions{Timeout: -1}))
	info, err := b.Info(ctx, "x")
	require.NoError(t, err)
	assert.Equal(t, hypervisor.StateShutdown, info.State)
	assert.Equal(t, hypervisor.StateSoftDeleted, a.state("x"))
	require.NoError(t, b.Destroy(ctx, "x"))
	assert.Equal(t, hypervisor.StateSoftDeleted, a.state("x"))

	require.NoError(t, a.drv.Restore(ctx, "x"))
	assert.Equal(t, hypervisor.StateRunning, a.state("x"))
}

// A record in the unscoped layout of earlier versions (<state dir>/<id>.json)
// is read for the driver's own instance and moved on the next write.
func TestLegacyStateRecordIsReadAndMoved(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	e.spawn(e.spec("old"))
	require.NoError(t, e.drv.PowerOff(ctx, "old", hypervisor.StopOptions{Timeout: -1}))
	require.NoError(t, os.Remove(e.recordPath("old")))
	legacy := filepath.Join(e.dir, "old.json")
	require.NoError(t, os.WriteFile(legacy, []byte(`{"id":"old","soft_deleted":true,"powered_off":true}`), 0o600))

	assert.Equal(t, hypervisor.StateSoftDeleted, e.state("old"))
	require.NoError(t, e.drv.Restore(ctx, "old"))
	assert.Equal(t, hypervisor.StateRunning, e.state("old"))
	assert.NoFileExists(t, legacy, "the write moved the record")
	assert.FileExists(t, e.recordPath("old"))

	// Another driver's Destroy of the ID never removes a legacy record.
	require.NoError(t, os.WriteFile(legacy, []byte(`{"id":"old"}`), 0o600))
	require.NoError(t, e.otherDriver().Destroy(context.WithoutCancel(ctx), "old"))
	assert.FileExists(t, legacy)
}
