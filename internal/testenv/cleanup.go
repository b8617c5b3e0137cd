package testenv

import (
	"context"
	"testing"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"
)

func isNotFound(err error) bool { return cerrdefs.IsNotFound(err) }

// RemoveContainerOnCleanup force-removes the container id (with its
// anonymous volumes) when the test ends.
func RemoveContainerOnCleanup(t testing.TB, cli *client.Client, id string) {
	t.Helper()
	t.Cleanup(func() {
		_, err := cli.ContainerRemove(context.WithoutCancel(t.Context()), id, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
		if err != nil && !isNotFound(err) {
			t.Errorf("cleanup: remove container %s: %v", id, err)
		}
	})
}
