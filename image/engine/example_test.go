package engine_test

import (
	"context"
	"fmt"
	"log"

	"github.com/moby/moby/client"

	"github.com/dockervisor/dockervisor/image"
	"github.com/dockervisor/dockervisor/image/engine"
	"github.com/dockervisor/dockervisor/image/localdir"
)

// Load a store image into the engine under the tag derived from its store
// ID, and save an engine image into the store.
func Example() {
	ctx := context.Background()
	cli, err := client.New(client.FromEnv)
	if err != nil {
		log.Fatal(err)
	}
	defer cli.Close()
	store, err := localdir.New("/var/lib/dockervisor/images")
	if err != nil {
		log.Fatal(err)
	}

	// Store → engine: streamed, verified (sha256) and all or nothing.
	const storeID = "0c3a2c4e-7a65-4d4c-9b1e-2f3c0a9c1f10"
	rc, err := store.Open(ctx, storeID)
	if err != nil {
		log.Fatal(err)
	}
	defer rc.Close()
	id, err := engine.Load(ctx, cli, rc, engine.TagFor(storeID))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("loaded", id, "as", engine.TagFor(storeID))

	// Engine → store: exactly one repo:tag is exported.
	tarball, err := engine.Save(ctx, cli, engine.TagFor(storeID))
	if err != nil {
		log.Fatal(err)
	}
	defer tarball.Close()
	meta, err := store.Create(ctx, image.Metadata{Name: "copy"}, tarball)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("saved as", meta.ID, meta.SHA256)
}
