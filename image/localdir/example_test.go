package localdir_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/dockervisor/dockervisor/image"
	"github.com/dockervisor/dockervisor/image/localdir"
)

func Example() {
	dir, err := os.MkdirTemp("", "images-")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)

	ctx := context.Background()
	s, err := localdir.New(dir)
	if err != nil {
		fmt.Println(err)
		return
	}
	// In real use r is a `docker save` stream, e.g. from engine.Save.
	meta, err := s.Create(ctx, image.Metadata{ID: "busybox-1", Name: "busybox", Properties: map[string]string{"os_distro": "busybox"}},
		strings.NewReader("tarball bytes"))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(meta.ID, meta.Size, meta.SHA256[:16])

	list, _ := s.List(ctx, image.ListOptions{Properties: map[string]string{"os_distro": "busybox"}})
	fmt.Println(len(list), list[0].Name)

	rc, err := s.Open(ctx, "busybox-1")
	if err != nil {
		fmt.Println(err)
		return
	}
	data, err := io.ReadAll(rc) // verified against the recorded sha256 at EOF
	rc.Close()
	fmt.Printf("%s %v\n", data, err)

	fmt.Println(s.Delete(ctx, "busybox-1"), s.Delete(ctx, "busybox-1"))
	_, err = s.Create(ctx, image.Metadata{ID: "../etc/passwd"}, strings.NewReader(""))
	fmt.Println(err != nil)
	// Output:
	// busybox-1 13 8d5594eb4bf5ec27
	// 1 busybox
	// tarball bytes <nil>
	// <nil> <nil>
	// true
}
