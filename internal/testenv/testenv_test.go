package testenv

import (
	"testing"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"github.com/stretchr/testify/require"
)

func TestBusyboxImageRuns(t *testing.T) {
	cli := MustHaveDocker(t)
	ref := BusyboxImage(t)
	ctx := t.Context()
	res, err := cli.ContainerCreate(ctx, client.ContainerCreateOptions{
		Image:      ref,
		Config:     &container.Config{Cmd: []string{"sh", "-c", "echo hello from busybox"}},
		HostConfig: &container.HostConfig{NetworkMode: "none"},
	})
	require.NoError(t, err)
	RemoveContainerOnCleanup(t, cli, res.ID)
	_, err = cli.ContainerStart(ctx, res.ID, client.ContainerStartOptions{})
	require.NoError(t, err)
	wait := cli.ContainerWait(ctx, res.ID, client.ContainerWaitOptions{})
	select {
	case r := <-wait.Result:
		require.Equal(t, int64(0), r.StatusCode)
	case err := <-wait.Error:
		t.Fatal(err)
	}
}
