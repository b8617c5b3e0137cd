package main

import (
	"context"
	"errors"

	"github.com/dockervisor/dockervisor/errclass"
	"github.com/dockervisor/dockervisor/hypervisor"
)

// Exit codes. Each error class of the SDK (package errclass, re-exported
// by package hypervisor; every error of the SDK wraps exactly one) maps to
// one code, so scripts can tell "not there" from "wrong state" from
// "engine down" without parsing messages.
const (
	ExitOK                = 0   // success
	ExitError             = 1   // any other failure
	ExitUsage             = 2   // bad command line: unknown command or flag, wrong number of arguments
	ExitNotFound          = 3   // no such instance, image, lab or command (ErrNotFound)
	ExitAlreadyExists     = 4   // the ID is taken (ErrAlreadyExists)
	ExitInvalidState      = 5   // not valid in the current state (ErrInvalidState)
	ExitInvalidArgument   = 6   // input rejected before anything changed (ErrInvalidArgument)
	ExitUnavailable       = 7   // the engine, store or switch cannot be reached (ErrUnavailable)
	ExitNotSupported      = 8   // the backend, as configured, cannot do it (ErrNotSupported)
	ExitCorrupt           = 9   // data does not match its checksum (ErrCorrupt)
	ExitConflict          = 10  // a concurrent change got there first (ErrConflict)
	ExitResourceExhausted = 11  // not enough resources (ErrResourceExhausted)
	ExitGuestFailed       = 12  // the instance's OS or cloud-init reported a failure (ErrGuestFailed)
	ExitInterrupted       = 130 // cancelled by SIGINT or SIGTERM; the operation was rolled back
)

// exitCodes is the exit code of each error class: one row per class of
// errclass.All, which a test checks.
var exitCodes = map[error]int{
	hypervisor.ErrNotFound:          ExitNotFound,
	hypervisor.ErrAlreadyExists:     ExitAlreadyExists,
	hypervisor.ErrInvalidState:      ExitInvalidState,
	hypervisor.ErrInvalidArgument:   ExitInvalidArgument,
	hypervisor.ErrUnavailable:       ExitUnavailable,
	hypervisor.ErrNotSupported:      ExitNotSupported,
	hypervisor.ErrCorrupt:           ExitCorrupt,
	hypervisor.ErrConflict:          ExitConflict,
	hypervisor.ErrResourceExhausted: ExitResourceExhausted,
	hypervisor.ErrGuestFailed:       ExitGuestFailed,
}

// exitCodeHelp is the text of `dvctl help exit-codes`.
const exitCodeHelp = `Exit codes of dvctl:

    0    success
    1    any other failure
    2    usage: unknown command or flag, wrong number of arguments
    3    not found: no such instance, image or lab
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
    10   conflict: a concurrent change got there first; try again
    11   resource exhausted: not enough resources for the request
    12   guest failed: the instance runs, but its operating system booted
         degraded or cloud-init failed
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
	}
	if c, ok := errclass.Of(err); ok {
		return exitCodes[c.Err], c.Name
	}
	return ExitError, "error"
}
