//go:build !linux

package testenv

import (
	"errors"
	"syscall"
)

// daemonAttr has nothing to set where there is no parent-death signal:
// the private services need Linux.
func daemonAttr() *syscall.SysProcAttr { return nil }

// unmountDetach needs Linux.
func unmountDetach(string) error { return errors.ErrUnsupported }

// makeEngineBridge needs Linux.
func makeEngineBridge(string) (string, error) { return "", errors.ErrUnsupported }

// removeEngineBridge needs Linux.
func removeEngineBridge(string) error { return errors.ErrUnsupported }

// engineBridgeExists needs Linux.
func engineBridgeExists(string) bool { return false }
