package docker

import (
	"context"
	"errors"
	"fmt"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"

	"github.com/dockervisor/dockervisor/hypervisor"
)

// translate maps an engine error to the hypervisor error classes, keeping
// the engine's error in the chain. notFound is the class for a missing
// object (ErrNotFound for containers, ErrImageNotFound for images).
func translate(err error, notFound error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return err
	case cerrdefs.IsNotFound(err):
		return fmt.Errorf("%w: %w", notFound, err)
	case cerrdefs.IsConflict(err):
		return fmt.Errorf("%w: %w", hypervisor.ErrInvalidState, err)
	case cerrdefs.IsInvalidArgument(err):
		return fmt.Errorf("%w: %w", hypervisor.ErrInvalidArgument, err)
	case client.IsErrConnectionFailed(err), cerrdefs.IsUnavailable(err):
		return fmt.Errorf("%w: %w", hypervisor.ErrUnavailable, err)
	}
	return err
}

// opErr wraps err in a *hypervisor.OpError, unless it is nil. An error
// that carries no hypervisor class yet (an engine or state-directory
// failure nothing classified) gets ErrUnavailable, so that every error a
// Driver method returns wraps exactly one class; the context's own errors
// pass as they are.
func opErr(op, id string, err error) error {
	if err == nil {
		return nil
	}
	if !hasClass(err) && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
		err = fmt.Errorf("%w: %w", hypervisor.ErrUnavailable, err)
	}
	var oe *hypervisor.OpError
	if errors.As(err, &oe) && oe.Op == op && oe.ID == id {
		return err
	}
	return &hypervisor.OpError{Op: op, ID: id, Err: err}
}

// classes are the hypervisor error classes.
var classes = []error{
	hypervisor.ErrNotFound, hypervisor.ErrAlreadyExists, hypervisor.ErrInvalidState,
	hypervisor.ErrInvalidArgument, hypervisor.ErrImageNotFound, hypervisor.ErrUnavailable,
	hypervisor.ErrNotSupported,
}

// hasClass reports whether err wraps one of the hypervisor error classes.
func hasClass(err error) bool {
	for _, c := range classes {
		if errors.Is(err, c) {
			return true
		}
	}
	return false
}
