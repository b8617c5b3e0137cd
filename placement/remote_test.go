package placement_test

import (
	"crypto/x509"
	"errors"
	"testing"

	"github.com/moby/moby/client"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dockervisor/dockervisor/hypervisor"
	"github.com/dockervisor/dockervisor/hypervisor/docker"
	"github.com/dockervisor/dockervisor/internal/testenv"
	"github.com/dockervisor/dockervisor/placement"
)

// TestRemoteEngineTLS drives the engine that listens on TCP with TLS
// (CA, server and client certificates made at test time): a client with
// the right material spawns, and its host figures come from the engine.
// Without a client certificate, or trusting another CA, the engine is
// refused with hypervisor.ErrUnavailable.
func TestRemoteEngineTLS(t *testing.T) {
	t.Parallel()
	e := testenv.MustHaveEngines(t)[testenv.SharedEngineCount-1]
	require.NotEmpty(t, e.TCP)
	ctx := t.Context()

	d := newDriver(t, e, testenv.UniqueName("remote-"))
	inst, err := d.Spawn(ctx, busyboxSpec(placement.NewUUID()))
	require.NoError(t, err)
	assert.Equal(t, hypervisor.StateRunning, inst.State)

	h, err := d.HostResources(ctx)
	require.NoError(t, err)
	info, err := e.Client.Info(ctx, client.InfoOptions{})
	require.NoError(t, err)
	assert.Equal(t, info.Info.NCPU, h.VCPUs)
	assert.Equal(t, info.Info.MemTotal>>20, h.MemoryMB)
	assert.Equal(t, info.Info.Name, h.Hostname)
	// Nothing read from this machine's kernel: no disk, load or uptime.
	assert.Zero(t, h.DiskGB)
	assert.Zero(t, h.LoadAverage)
	assert.Zero(t, h.Uptime)
	assert.Zero(t, h.MemoryFreeMB)
	assert.Equal(t, 1, h.Instances["running"])

	// Reported to Placement: no DISK_GB for the remote host.
	c, _ := newClient(t)
	r := newReporter(t, c, d, placement.CustomTrait(testenv.UniqueName("t")))
	st, err := r.Report(ctx)
	require.NoError(t, err)
	assert.NotContains(t, st.Inventory, placement.DiskGB)
	assert.Equal(t, int(info.Info.MemTotal>>20), st.Inventory[placement.MemoryMB].Total)

	for name, tlsCfg := range map[string]docker.TLSConfig{
		"no client certificate":     {CAFile: e.TLS.CAFile},
		"wrong CA":                  {CAFile: e.WrongCA.CAFile, CertFile: e.WrongCA.CertFile, KeyFile: e.WrongCA.KeyFile},
		"client cert of another CA": {CAFile: e.TLS.CAFile, CertFile: e.WrongCA.CertFile, KeyFile: e.WrongCA.KeyFile},
	} {
		t.Run(name, func(t *testing.T) {
			bad, err := docker.New(docker.WithDockerHost(e.TCP), docker.WithTLS(tlsCfg), docker.WithStateDir(t.TempDir()))
			require.NoError(t, err)
			defer bad.Close()
			_, err = bad.HostResources(ctx)
			require.ErrorIs(t, err, hypervisor.ErrUnavailable)
			if name == "wrong CA" {
				var ua x509.UnknownAuthorityError
				assert.True(t, errors.As(err, &ua), "the server certificate is not trusted: %v", err)
			}
			_, err = bad.Spawn(ctx, busyboxSpec(placement.NewUUID()))
			require.ErrorIs(t, err, hypervisor.ErrUnavailable)
		})
	}
	// Plain TCP without TLS is refused as well.
	plain, err := docker.New(docker.WithDockerHost(e.TCP), docker.WithStateDir(t.TempDir()))
	require.NoError(t, err)
	defer plain.Close()
	_, err = plain.HostResources(ctx)
	require.Error(t, err)
}
