package glance_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"os"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"

	"github.com/dockervisor/dockervisor/image"
	"github.com/dockervisor/dockervisor/image/glance"
)

// A store for a keystone-authenticated cloud: authenticate with the
// ordinary gophercloud path, get the image v2 service client, and hand it
// to New.
func ExampleNew() {
	ctx := context.Background()
	provider, err := openstack.AuthenticatedClient(ctx, gophercloud.AuthOptions{
		IdentityEndpoint: "https://keystone.example.com:5000/v3",
		Username:         "nova",
		Password:         os.Getenv("OS_PASSWORD"),
		DomainName:       "Default",
		Scope:            &gophercloud.AuthScope{ProjectName: "service", DomainName: "Default"},
	})
	if err != nil {
		log.Fatal(err)
	}
	sc, err := openstack.NewImageV2(provider, gophercloud.EndpointOpts{Region: "RegionOne"})
	if err != nil {
		log.Fatal(err)
	}
	store, err := glance.New(sc)
	if err != nil {
		log.Fatal(err)
	}
	list, err := store.List(ctx, image.ListOptions{Name: "busybox"})
	if err != nil {
		log.Fatal(err)
	}
	for _, m := range list {
		fmt.Println(m.ID, m.Size, m.SHA256)
	}
}

// A store for a Glance without keystone, such as a lab or test instance.
func ExampleNewNoAuth() {
	ctx := context.Background()
	store, err := glance.NewNoAuth("http://127.0.0.1:9292/")
	if err != nil {
		log.Fatal(err)
	}
	f, err := os.Open("busybox.tar") // a `docker save` tarball
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close()
	meta, err := store.Create(ctx, image.Metadata{Name: "busybox"}, f)
	if err != nil {
		log.Fatal(err)
	}
	rc, err := store.Open(ctx, meta.ID)
	if err != nil {
		log.Fatal(err)
	}
	defer rc.Close()
	// Reading to the end verifies size, md5, sha512 and sha256.
	if _, err := io.Copy(io.Discard, rc); err != nil {
		log.Fatal(err)
	}
}
