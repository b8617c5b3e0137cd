//go:build !windows

package main

import (
	"os"
	"os/signal"
	"sync"
	"syscall"

	"github.com/dockervisor/dockervisor/hypervisor"
)

// watchResize sends the terminal's size on every SIGWINCH until stop.
func watchResize(fd int) (<-chan hypervisor.TerminalSize, func()) {
	ch := make(chan hypervisor.TerminalSize, 1)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGWINCH)
	done := make(chan struct{})
	var once sync.Once
	go func() {
		defer close(ch)
		for {
			select {
			case <-sig:
				select {
				case ch <- termSize(fd):
				default:
				}
			case <-done:
				return
			}
		}
	}()
	return ch, func() { once.Do(func() { signal.Stop(sig); close(done) }) }
}
