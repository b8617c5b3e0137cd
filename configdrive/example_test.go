package configdrive_test

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/dockervisor/dockervisor/configdrive"
)

func Example() {
	tree, err := configdrive.Build(configdrive.Instance{
		UUID:     "0b6f2d2e-5d0a-4a53-9d57-6b9a2f1e8c11",
		Hostname: "web-1",
		Meta:     map[string]string{"role": "web"},
		UserData: []byte("#cloud-config\nruncmd: [[echo, hi]]\n"),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	dir, _ := os.MkdirTemp("", "cd")
	defer os.RemoveAll(dir)
	// Bind-mount dir read-only at configdrive.SeedDir in the guest.
	if err := configdrive.Write(dir, tree); err != nil {
		fmt.Println(err)
		return
	}
	b, _ := os.ReadFile(filepath.Join(dir, "openstack", "latest", "user_data"))
	fmt.Printf("%s", b)
	// Output:
	// #cloud-config
	// runcmd: [[echo, hi]]
}
