//go:build unix

package localdir

import (
	"os"
	"syscall"
)

// writing takes the writers' lock (a flock of the directory) shared, for
// a Create; the kernel drops it when the process dies.
func (s *Store) writing() (unlock func(), err error) {
	f, err := os.Open(s.dir)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_SH); err != nil {
		f.Close()
		return nil, err
	}
	return func() { f.Close() }, nil
}

// lockExclusive takes the writers' lock exclusively if it is free: no
// Create of any process runs.
func (s *Store) lockExclusive() (release func(), ok bool) {
	f, err := os.Open(s.dir)
	if err != nil {
		return nil, false
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, false
	}
	return func() { f.Close() }, true
}
