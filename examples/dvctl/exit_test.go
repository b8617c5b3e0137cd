package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/dockervisor/dockervisor/errclass"
	"github.com/dockervisor/dockervisor/examples/dvctl/lab"
	"github.com/dockervisor/dockervisor/hypervisor"
	"github.com/dockervisor/dockervisor/image"
	"github.com/dockervisor/dockervisor/network/floatingip"
)

// TestExitCodeTable: every error class of the SDK has its row (a class
// added to errclass fails here until it has one), the codes differ, and
// `dvctl help exit-codes` explains each.
func TestExitCodeTable(t *testing.T) {
	seen := map[int]string{}
	for _, c := range errclass.All() {
		code, ok := exitCodes[c.Err]
		if !assert.True(t, ok, "class %s has no exit code", c.Name) {
			continue
		}
		assert.NotContains(t, seen, code, "class %s shares exit code %d with %s", c.Name, code, seen[code])
		seen[code] = c.Name
		assert.Contains(t, exitCodeHelp, fmt.Sprintf("\n    %-4d ", code), "help explains exit code %d", code)
		got, name := classify(&hypervisor.OpError{Op: "x", ID: "y", Err: fmt.Errorf("%w: detail", c.Err)})
		assert.Equal(t, code, got)
		assert.Equal(t, c.Name, name)
	}
	assert.Len(t, exitCodes, len(errclass.All()), "no row for what is not a class")
}

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		err  error
		code int
	}{
		{nil, ExitOK},
		{errors.New("plain"), ExitError},
		{usageError{errors.New("bad flag")}, ExitUsage},
		{fmt.Errorf("spawn: %w", context.Canceled), ExitInterrupted},
		{fmt.Errorf("x: %w", image.ErrChecksumMismatch), ExitCorrupt},
		{fmt.Errorf("x: %w", hypervisor.ErrImageNotFound), ExitNotFound},
		{fmt.Errorf("x: %w", lab.ErrNotFound), ExitNotFound},
		{fmt.Errorf("x: %w", lab.ErrInvalid), ExitInvalidArgument},
		{fmt.Errorf("x: %w", floatingip.ErrAlreadyBound), ExitAlreadyExists},
		{fmt.Errorf("x: %w", hypervisor.ErrNoInit), ExitInvalidArgument},
		{fmt.Errorf("x: %w", hypervisor.ErrDegraded), ExitGuestFailed},
		{fmt.Errorf("x: %w", image.ErrUnavailable), ExitUnavailable},
	} {
		code, _ := classify(tc.err)
		assert.Equal(t, tc.code, code, "%v", tc.err)
	}
	assert.False(t, strings.Contains(exitCodeHelp, "\t"), "help is indented with spaces")
}
