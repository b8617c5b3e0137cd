package docker

import (
	"context"
	"errors"
	"fmt"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"

	"github.com/dockervisor/dockervisor/errclass"
	"github.com/dockervisor/dockervisor/hypervisor"
	"github.com/dockervisor/dockervisor/image"
)

// classify is the one place where an error from below the Driver (the
// engine, the image store, image loading) gets its error class. The
// original error stays in the chain. notFound is what a missing object
// is: hypervisor.ErrNotFound for containers (reported as a missing
// instance), hypervisor.ErrImageNotFound for images. Context errors pass
// unchanged, and so do errors that already carry a class (every error of
// this module's packages does: a store's checksum mismatch is
// ErrCorrupt, an archive the engine cannot load ErrInvalidArgument), but
// for a store's not-found, which becomes notFound. The engine's errors
// are classified by their errdefs class.
func classify(err error, notFound error) error {
	if notFound == hypervisor.ErrNotFound {
		notFound = errNoInstance
	}
	switch {
	case err == nil:
		return nil
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return err
	case errors.Is(err, image.ErrNotFound) && !errors.Is(err, notFound):
		return fmt.Errorf("%w: %w", notFound, err)
	case errclass.Has(err):
		return err
	case cerrdefs.IsNotFound(err):
		return fmt.Errorf("%w: %w", notFound, err)
	case cerrdefs.IsInvalidArgument(err):
		return fmt.Errorf("%w: %w", hypervisor.ErrInvalidArgument, err)
	case client.IsErrConnectionFailed(err), cerrdefs.IsUnavailable(err):
		return fmt.Errorf("%w: %w", hypervisor.ErrUnavailable, err)
	case cerrdefs.IsConflict(err):
		return fmt.Errorf("%w: %w", hypervisor.ErrInvalidState, err)
	}
	return err
}

// errNoInstance is how the backend reports a missing instance.
var errNoInstance = fmt.Errorf("instance %w", hypervisor.ErrNotFound)

// hasClass reports whether err already wraps an error class.
func hasClass(err error) bool { return errclass.Has(err) }

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
