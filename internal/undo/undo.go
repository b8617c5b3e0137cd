// Package undo keeps the rollback steps of a multi-step operation: each step
// registers how to undo itself before it runs, and a failure runs the
// registered steps once, in reverse order.
package undo

import (
	"context"
	"errors"
	"time"
)

// DefaultStepTimeout bounds each undo function of a Stack whose
// StepTimeout is zero.
const DefaultStepTimeout = 30 * time.Second

// Stack is a list of undo functions. The zero value is ready to use. It is
// not safe for concurrent use.
type Stack struct {
	// StepTimeout bounds each undo function, so that a hung backend
	// cannot make a rollback hang forever. Zero means DefaultStepTimeout.
	StepTimeout time.Duration

	fns  []func(context.Context) error
	done bool
}

// Push registers fn to run on Rollback.
func (s *Stack) Push(fn func(context.Context) error) { s.fns = append(s.fns, fn) }

// Release forgets every registered function: the operation succeeded.
func (s *Stack) Release() { s.fns, s.done = nil, true }

// Rollback runs the registered functions in reverse order, once, and joins
// their errors. Each runs with a context that is not cancelled when ctx is,
// so that a cancelled operation still cleans up, and that ends after
// StepTimeout.
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
		}
	}
	s.fns = nil
	return errors.Join(errs...)
}
