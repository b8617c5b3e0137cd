package imagetest_test

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/dockervisor/dockervisor/image"
	"github.com/dockervisor/dockervisor/image/imagetest"
)

func ExampleMemStore() {
	ctx := context.Background()
	s := imagetest.NewMemStore()

	meta, err := s.Create(ctx, image.Metadata{ID: "img-1", Name: "busybox"}, strings.NewReader("a docker save tarball"))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(meta.ID, meta.Name, meta.ContainerFormat, meta.Size, meta.SHA256[:12])

	rc, err := s.Open(ctx, meta.ID)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer rc.Close()
	data, err := io.ReadAll(rc) // reading to the end verifies size and sha256
	fmt.Printf("%q %v\n", data, err)

	_, err = s.Stat(ctx, "img-2")
	fmt.Println(err)
	// Output:
	// img-1 busybox docker 21 37bd1a3c8120
	// "a docker save tarball" <nil>
	// image: not found: "img-2"
}
