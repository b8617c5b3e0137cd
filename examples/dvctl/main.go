// Command dvctl drives a dockervisor hypervisor from a shell: every operation
// of hypervisor.Driver as a subcommand, image stores (a local directory or
// OpenStack Glance), and declarative labs brought up and down from one YAML
// file. It is built on the public API of the SDK only, so it doubles as the
// reference for how to use it.
//
// Run `dvctl --help` for the commands and `dvctl help exit-codes` for the
// exit codes. Output is a table for people or, with -o json, JSON with the
// SDK's field names for scripts.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	os.Exit(mainExit())
}

// mainExit runs the command line and returns the process exit code. A first
// SIGINT or SIGTERM cancels the context: the running operation returns and
// the SDK rolls back what it had done; a second signal kills the process.
func mainExit() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		stop() // a second signal gets the default action
	}()
	return Run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
}
