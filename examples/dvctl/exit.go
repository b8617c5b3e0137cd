package main

import (
	"context"
	"errors"

	"github.com/dockervisor/dockervisor/examples/dvctl/lab"
	"github.com/dockervisor/dockervisor/hypervisor"
	"github.com/dockervisor/dockervisor/image"
	"github.com/dockervisor/dockervisor/network"
	"github.com/dockervisor/dockervisor/network/floatingip"
	"github.com/dockervisor/dockervisor/network/secgroup"
)

// Exit codes. Each error class of the SDK maps to one code, so scripts can
// tell "not there" from "wrong state" from "engine down" without parsing
// messages.
const (
	ExitOK              = 0   // success
	ExitError           = 1   // any other failure
	ExitUsage           = 2   // bad command line: unknown command or flag, wrong number of arguments
	ExitNotFound        = 3   // no such instance or image (hypervisor.ErrNotFound, ErrImageNotFound, image.ErrNotFound)
	ExitAlreadyExists   = 4   // the ID is taken (hypervisor.ErrAlreadyExists, image.ErrAlreadyExists)
	ExitInvalidState    = 5   // not valid in the instance's current state (hypervisor.ErrInvalidState)
	ExitInvalidArgument = 6   // input rejected before anything changed (ErrInvalidArgument, image.ErrUnsupportedFormat, network.ErrInvalidVIF, a bad lab file)
	ExitUnavailable     = 7   // the engine, store or switch cannot be reached (ErrUnavailable)
	ExitNotSupported    = 8   // the backend, as configured, cannot do it (errors.ErrUnsupported)
	ExitCorrupt         = 9   // data does not match its checksum (image.ErrChecksumMismatch)
	ExitInterrupted     = 130 // cancelled by SIGINT or SIGTERM; the operation was rolled back
)

// exitCodeHelp is the text of `dvctl help exit-codes`.
const exitCodeHelp = `Exit codes of dvctl:

    0    success
    1    any other failure
    2    usage: unknown command or flag, wrong number of arguments
    3    not found: no such instance or image
    4    already exists: the instance or image ID is taken (or a floating
         IP is bound elsewhere)
    5    invalid state: the operation is not valid in the instance's state
         (stop of a soft-deleted instance, say)
    6    invalid argument: the input was rejected before anything changed
         (bad ID, bad flavor, an archive the engine cannot load, a bad lab
         file, an OS instance of an image without an init)
    7    unavailable: the Docker engine, the image store or Open vSwitch
         cannot be reached
    8    not supported: the backend, as configured, cannot do it
    9    corrupt: image data does not match its checksum
    130  interrupted (Ctrl-C or SIGTERM); what the operation did was rolled back

dvctl exec exits with the command's own exit status (127 when the command
cannot be started in the instance); its own failures keep the codes above.

With -o json, a failure also prints {"error": "...", "class": "...",
"exit_code": N} on standard error.
`

// usageError marks an error in the command line itself.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// classify returns the exit code and class name of err.
func classify(err error) (int, string) {
	var ue usageError
	switch {
	case err == nil:
		return ExitOK, ""
	case errors.As(err, &ue):
		return ExitUsage, "usage"
	case errors.Is(err, context.Canceled):
		return ExitInterrupted, "interrupted"
	case errors.Is(err, hypervisor.ErrNotFound), errors.Is(err, hypervisor.ErrImageNotFound),
		errors.Is(err, image.ErrNotFound), errors.Is(err, lab.ErrNotFound):
		return ExitNotFound, "not_found"
	case errors.Is(err, hypervisor.ErrAlreadyExists), errors.Is(err, image.ErrAlreadyExists),
		errors.Is(err, floatingip.ErrAlreadyBound):
		return ExitAlreadyExists, "already_exists"
	case errors.Is(err, hypervisor.ErrInvalidState):
		return ExitInvalidState, "invalid_state"
	case errors.Is(err, image.ErrChecksumMismatch):
		return ExitCorrupt, "corrupt"
	case errors.Is(err, hypervisor.ErrInvalidArgument), errors.Is(err, image.ErrInvalidArgument),
		errors.Is(err, image.ErrUnsupportedFormat), errors.Is(err, network.ErrInvalidVIF),
		errors.Is(err, lab.ErrInvalid), errors.Is(err, secgroup.ErrInvalidRule),
		errors.Is(err, secgroup.ErrUnknownGroup), errors.Is(err, floatingip.ErrInvalidAddress),
		errors.Is(err, hypervisor.ErrNoInit):
		return ExitInvalidArgument, "invalid_argument"
	case errors.Is(err, hypervisor.ErrUnavailable), errors.Is(err, image.ErrUnavailable),
		errors.Is(err, network.ErrUnavailable):
		return ExitUnavailable, "unavailable"
	case errors.Is(err, errors.ErrUnsupported):
		return ExitNotSupported, "not_supported"
	}
	return ExitError, "error"
}
