package placement

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/gophercloud/gophercloud/v2"

	"github.com/dockervisor/dockervisor/errclass"
)

// Errors. Every error of this package wraps exactly one of them; test with
// [errors.Is]. Each wraps one of the module's error classes (package
// errclass, re-exported by package hypervisor), named in its
// documentation. The gophercloud error stays in the chain.
var (
	// ErrInvalidArgument means the caller's input was rejected before
	// anything was changed, or Placement refused the request as malformed
	// (HTTP 400). It is an [errclass.ErrInvalidArgument].
	ErrInvalidArgument = errclass.New("placement: invalid argument", errclass.ErrInvalidArgument)
	// ErrNotFound means a resource provider or consumer does not exist. It
	// is an [errclass.ErrNotFound].
	ErrNotFound = errclass.New("placement: not found", errclass.ErrNotFound)
	// ErrConflict means Placement refused a write because of a concurrent
	// change that retries did not overcome (a generation conflict), or
	// because the provider's capacity would be exceeded or its inventory
	// is in use. It is an [errclass.ErrConflict].
	ErrConflict = errclass.New("placement: conflict", errclass.ErrConflict)
	// ErrAlreadyClaimed means the consumer (instance) already holds
	// allocations: another scheduler placed it first. It is an
	// [errclass.ErrAlreadyExists].
	ErrAlreadyClaimed = errclass.New("placement: consumer already holds allocations", errclass.ErrAlreadyExists)
	// ErrNoCandidates means Placement found no provider for a request. It
	// is an [errclass.ErrResourceExhausted].
	ErrNoCandidates = errclass.New("placement: no allocation candidates", errclass.ErrResourceExhausted)
	// ErrUnavailable means Placement could not be reached or failed
	// (HTTP 5xx). It is an [errclass.ErrUnavailable].
	ErrUnavailable = errclass.New("placement: service unavailable", errclass.ErrUnavailable)
)

// Placement's error codes (the "code" of an error body), from
// placement/errors.py.
const (
	codeConcurrentUpdate = "placement.concurrent_update"
	codeInventoryInUse   = "placement.inventory.inuse"
)

// errorCode returns Placement's error code of a failed request, or "".
func errorCode(err error) string {
	var ue gophercloud.ErrUnexpectedResponseCode
	if !errors.As(err, &ue) {
		return ""
	}
	var body struct {
		Errors []struct {
			Code string `json:"code"`
		} `json:"errors"`
	}
	if json.Unmarshal(ue.Body, &body) != nil || len(body.Errors) == 0 {
		return ""
	}
	return body.Errors[0].Code
}

// isGenerationConflict reports whether err is a 409 that a retry with a
// fresh generation can overcome.
func isGenerationConflict(err error) bool {
	return gophercloud.ResponseCodeIs(err, http.StatusConflict) && errorCode(err) == codeConcurrentUpdate
}

// classify wraps a gophercloud error in this package's error class.
func classify(op string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("placement: %s: %w", op, err)
	}
	var ue gophercloud.ErrUnexpectedResponseCode
	if errors.As(err, &ue) {
		switch {
		case ue.Actual == http.StatusNotFound:
			return fmt.Errorf("%w: %s: %w", ErrNotFound, op, err)
		case ue.Actual == http.StatusConflict:
			return fmt.Errorf("%w: %s: %w", ErrConflict, op, err)
		case ue.Actual == http.StatusBadRequest:
			return fmt.Errorf("%w: %s: %w", ErrInvalidArgument, op, err)
		case ue.Actual >= 500:
			return fmt.Errorf("%w: %s: %w", ErrUnavailable, op, err)
		}
		return fmt.Errorf("placement: %s: %w", op, err)
	}
	// No HTTP answer at all: a refused connection, a reset, a timeout.
	return fmt.Errorf("%w: %s: %w", ErrUnavailable, op, err)
}
