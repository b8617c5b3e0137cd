package docker

import (
	"context"
	"errors"
	"fmt"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"

	"github.com/dockervisor/dockervisor/hypervisor"
	"github.com/dockervisor/dockervisor/image"
	"github.com/dockervisor/dockervisor/image/engine"
)

// classify is the one place where an error from below the Driver (the
// engine, the image store, image loading) gets its hypervisor error class.
// The original error stays in the chain. notFound is the class for a
// missing object: ErrNotFound for containers, ErrImageNotFound for images.
// Context errors and errors that already carry a class pass unchanged.
func classify(err error, notFound error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded), hasClass(err):
		return err
	case errors.Is(err, image.ErrInvalidArgument):
		// Before not-found: a store calls a malformed ID both.
		return fmt.Errorf("%w: %w", hypervisor.ErrInvalidArgument, err)
	case errors.Is(err, image.ErrUnsupportedFormat), errors.Is(err, image.ErrChecksumMismatch), errors.Is(err, engine.ErrLoadFailed):
		// The image cannot be loaded as it is: retrying will not help.
		return fmt.Errorf("%w: cannot be loaded: %w", hypervisor.ErrInvalidArgument, err)
	case errors.Is(err, image.ErrNotFound), cerrdefs.IsNotFound(err):
		return fmt.Errorf("%w: %w", notFound, err)
	case cerrdefs.IsInvalidArgument(err):
		return fmt.Errorf("%w: %w", hypervisor.ErrInvalidArgument, err)
	case errors.Is(err, image.ErrUnavailable), client.IsErrConnectionFailed(err), cerrdefs.IsUnavailable(err):
		return fmt.Errorf("%w: %w", hypervisor.ErrUnavailable, err)
	case cerrdefs.IsConflict(err):
		return fmt.Errorf("%w: %w", hypervisor.ErrInvalidState, err)
	}
	return err
}

// classes are the hypervisor error classes.
var classes = []error{
	hypervisor.ErrNotFound, hypervisor.ErrAlreadyExists, hypervisor.ErrInvalidState,
	hypervisor.ErrInvalidArgument, hypervisor.ErrImageNotFound, hypervisor.ErrUnavailable,
	hypervisor.ErrNotSupported, hypervisor.ErrCommandNotFound,
}

// hasClass reports whether err already wraps a hypervisor error class.
func hasClass(err error) bool {
	for _, c := range classes {
		if errors.Is(err, c) {
			return true
		}
	}
	return false
}

// opErr wraps err in a *hypervisor.OpError, unless it is nil. An error
// that carries no hypervisor class yet (an engine or state-directory
// failure nothing classified) gets ErrUnavailable, so that every error a
// Driver method returns wraps exactly one class; the context's own errors
// pass as they are.
func opErr(op, id string, err error) error {
	if err != nil && !hasClass(err) && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
		err = fmt.Errorf("%w: %w", hypervisor.ErrUnavailable, err)
	}
	return hypervisor.WrapOp(op, id, err)
}

// isNotFound reports a missing container or image, from the engine or
// already classified.
func isNotFound(err error) bool {
	return err != nil && (errors.Is(err, hypervisor.ErrNotFound) || cerrdefs.IsNotFound(err))
}

// isConflict reports an engine conflict (a name in use, a container that
// is not running).
func isConflict(err error) bool { return err != nil && cerrdefs.IsConflict(err) }

var errNotOurs = errors.New("container was not created by this driver")
