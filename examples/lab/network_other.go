//go:build !linux

package main

import (
	"context"
	"fmt"

	"github.com/moby/moby/client"

	"github.com/dockervisor/dockervisor/image"
)

// networkDemo needs Linux network namespaces.
func networkDemo(context.Context, *client.Client, image.Reader, string, string) error {
	fmt.Println("==> network demo skipped: it needs Linux")
	return nil
}
