//go:build !linux

package kmod

import "errors"

// release needs Linux: there are no Linux kernel modules elsewhere.
func release() (string, error) { return "", errors.ErrUnsupported }
