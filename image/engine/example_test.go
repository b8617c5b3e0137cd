package engine_test

import (
	"context"
	"errors"
	"fmt"
	"io"
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

// Load a store image that may be a docker-save or an OCI image-layout
// archive (`skopeo copy … oci-archive:`). LoadFrom opens it again for the
// second read an OCI layout needs.
func ExampleLoadFrom() {
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
	const storeID = "4f1d2b9e-0a57-4c1e-8f0e-6d8b1c2a3e4f"
	open := func(ctx context.Context) (io.ReadCloser, error) { return store.Open(ctx, storeID) }
	id, err := engine.LoadFrom(ctx, cli, open, engine.TagFor(storeID), engine.LoadOptions{Platform: "linux/amd64"})
	if errors.Is(err, image.ErrUnsupportedFormat) {
		log.Fatalf("the engine cannot load this archive: %v", err)
	}
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("loaded", id)
}
