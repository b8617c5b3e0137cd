// Package undo keeps the rollback steps of a multi-step operation: each step
// registers how to undo itself before it runs, and a failure runs the
// registered steps once, in reverse order. It is the one rollback stack of
// the module.
//
// # Rollback errors
//
// One policy for every operation that rolls back:
//
//   - Every registered step runs, even when an earlier one failed, each
//     bounded by [Stack.StepTimeout] and with a context that the
//     operation's cancellation does not end, so that a cancelled or timed
//     out operation still cleans up, and a hung backend cannot make it hang
//     forever.
//   - Each step that fails is logged at Warn on [Stack.Log], with the
//     operation ([Stack.Op]) and the instance ID ([Stack.ID]): a leftover
//     an operator has to know about is never silent.
//   - A rollback's failures never change what the operation's error is:
//     the operation returns its own error, with the rollback's attached by
//     [Stack.Fail], so that the message says what could not be undone while
//     errors.Is and errors.As see the operation's error alone (its one
//     error class). [Stack.Rollback] returns the failures joined, for a
//     caller that reports them in a place of its own.
package undo

import (
	"context"
	"errors"
	"log/slog"
	"time"
)

// DefaultStepTimeout bounds each undo function of a Stack whose
// StepTimeout is zero.
const DefaultStepTimeout = 30 * time.Second

// Stack is a list of undo functions. The zero value is ready to use (it
// logs nowhere). It is not safe for concurrent use.
type Stack struct {
	// StepTimeout bounds each undo function, so that a hung backend
	// cannot make a rollback hang forever. Zero means DefaultStepTimeout.
	StepTimeout time.Duration
	// Log receives a Warn record for each step that fails. Nil means
	// none.
	Log *slog.Logger
	// Op and ID name the operation and the instance (or device, port...)
	// in the log.
	Op, ID string

	fns  []func(context.Context) error
	done bool
}

// Push registers fn to run on Rollback.
func (s *Stack) Push(fn func(context.Context) error) { s.fns = append(s.fns, fn) }

// Release forgets every registered function: the operation succeeded.
func (s *Stack) Release() { s.fns, s.done = nil, true }

// Rollback runs the registered functions in reverse order, once, logs each
// failure at Warn and returns them joined. Each runs with a context that
// is not cancelled when ctx is, so that a cancelled operation still cleans
// up, and that ends after StepTimeout.
func (s *Stack) Rollback(ctx context.Context) error {
	if s.done {
		return nil
	}
	s.done = true
	timeout := s.StepTimeout
	if timeout <= 0 {
		timeout = DefaultStepTimeout
	}
	base := context.WithoutCancel(ctx)
	var errs []error
	for i := len(s.fns) - 1; i >= 0; i-- {
		stepCtx, cancel := context.WithTimeout(base, timeout)
		err := s.fns[i](stepCtx)
		cancel()
		if err != nil {
			errs = append(errs, err)
			if s.Log != nil {
				s.Log.WarnContext(base, "rollback step failed; something may be left behind", "op", s.Op, "id", s.ID, "err", err)
			}
		}
	}
	s.fns = nil
	return errors.Join(errs...)
}

// Fail rolls back (see Rollback) after the operation failed with err, and
// returns err with the rollback's failures attached: the message ends with
// them, while errors.Is and errors.As see err alone. It returns err as it
// is when the rollback succeeded, and nil for a nil err (without rolling
// back).
func (s *Stack) Fail(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	if rerr := s.Rollback(ctx); rerr != nil {
		return &Error{Err: err, Rollback: rerr}
	}
	return err
}

// Error is an operation's error with the failures of its rollback.
type Error struct {
	Err      error // the operation's error
	Rollback error // what could not be undone
}

// Error returns the operation's message, then the rollback's.
func (e *Error) Error() string {
	return e.Err.Error() + " (rollback incomplete: " + e.Rollback.Error() + ")"
}

// Unwrap returns the operation's error alone.
func (e *Error) Unwrap() error { return e.Err }
