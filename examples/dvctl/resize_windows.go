package main

import (
	"sync"

	"github.com/dockervisor/dockervisor/hypervisor"
)

// watchResize has no SIGWINCH to watch on Windows: the terminal keeps the
// size it started with. The channel closes at stop.
func watchResize(int) (<-chan hypervisor.TerminalSize, func()) {
	ch := make(chan hypervisor.TerminalSize)
	var once sync.Once
	return ch, func() { once.Do(func() { close(ch) }) }
}
