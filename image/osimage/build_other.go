//go:build !linux

package osimage

import (
	"context"
	"fmt"

	"github.com/dockervisor/dockervisor/errclass"
)

// Build needs debootstrap and chroot, which only Linux has; elsewhere it
// returns an error wrapping errclass.ErrNotSupported (and so
// errors.ErrUnsupported).
func Build(ctx context.Context, api Engine, opts Options) (Result, error) {
	return Result{}, fmt.Errorf("osimage: build: %w", errclass.ErrNotSupported)
}
