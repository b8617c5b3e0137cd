package docker

import (
	"errors"

	cerrdefs "github.com/containerd/errdefs"

	"github.com/dockervisor/dockervisor/hypervisor"
)

func isNotFound(err error) bool {
	return err != nil && (errors.Is(err, hypervisor.ErrNotFound) || cerrdefs.IsNotFound(err))
}

func isConflict(err error) bool { return err != nil && cerrdefs.IsConflict(err) }
