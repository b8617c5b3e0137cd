// Command lanetool is the host-side helper of scripts/kernel-lane.sh.
//
//	lanetool osimage         builds (or finds) the OS test image on the
//	                         host's engine, as the tests would, and prints
//	                         its reference and image ID
//	lanetool report DIR      reads the test2json files DIR/NAME.json that
//	                         the lane brought back, prints a summary per
//	                         package and every failed or skipped test with
//	                         its output, and exits 1 when a test failed or
//	                         skipped, a binary did not finish, or matched
//	                         no test
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/moby/moby/client"

	"github.com/dockervisor/dockervisor/image/osimage"
	"github.com/dockervisor/dockervisor/internal/testenv"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	switch os.Args[1] {
	case "osimage":
		if err := osImage(); err != nil {
			fmt.Fprintln(os.Stderr, "lanetool osimage:", err)
			os.Exit(1)
		}
	case "report":
		if len(os.Args) != 3 {
			usage()
		}
		ok, err := report(os.Stdout, os.Args[2])
		if err != nil {
			fmt.Fprintln(os.Stderr, "lanetool report:", err)
			os.Exit(2)
		}
		if !ok {
			os.Exit(1)
		}
	default:
		usage()
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: lanetool osimage | lanetool report DIR")
	os.Exit(2)
}

// osImage builds the OS image the tests use (testenv.OSImageOptions) on the
// engine of DOCKER_HOST, or finds it there, and prints "REF IMAGE_ID".
func osImage() error {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	cli, err := client.New(client.FromEnv)
	if err != nil {
		return err
	}
	defer cli.Close()
	if _, err := cli.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true}); err != nil {
		return fmt.Errorf("docker engine at %s: %w", cli.DaemonHost(), err)
	}
	opts := testenv.OSImageOptions
	opts.Log = io.Discard
	if f, err := os.OpenFile(testenv.OSImageBuildLog, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644); err == nil {
		defer f.Close()
		opts.Log = f
	}
	res, err := osimage.Build(ctx, cli, opts)
	if err != nil {
		return fmt.Errorf("%w (log: %s)", err, testenv.OSImageBuildLog)
	}
	fmt.Println(res.Ref, res.ImageID)
	return nil
}
