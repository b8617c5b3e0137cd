package testenv

import (
	"testing"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
)

// TestEngineRestart checks that a restarted engine keeps its containers,
// stopped, and that Stop leaves nothing behind.
func TestEngineRestart(t *testing.T) {
	var e *Engine
	t.Run("engine", func(t *testing.T) {
		e = StartEngine(t, EngineOptions{})
		ref := "dockervisor-test/busybox:priv"
		if err := e.LoadBusybox(t.Context(), ref); err != nil {
			t.Fatal(err)
		}
		ctx := t.Context()
		c, err := e.Client.ContainerCreate(ctx, client.ContainerCreateOptions{
			Config:     &container.Config{Image: ref, Cmd: []string{"sleep", "3600"}},
			HostConfig: &container.HostConfig{NetworkMode: "none"},
		})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.Client.ContainerStart(ctx, c.ID, client.ContainerStartOptions{}); err != nil {
			t.Fatal(err)
		}
		if err := e.Restart(); err != nil {
			t.Fatal(err)
		}
		res, err := e.Client.ContainerInspect(ctx, c.ID, client.ContainerInspectOptions{})
		if err != nil {
			t.Fatalf("the container survives a restart: %v", err)
		}
		if res.Container.State.Running {
			t.Fatal("a restart stops the engine's containers")
		}
	})
	if e != nil {
		if l := e.EngineLeftovers(); len(l) > 0 {
			t.Fatalf("left behind: %v", l)
		}
	}
}
