// Package undo keeps the rollback steps of a multi-step operation: each step
// registers how to undo itself before it runs, and a failure runs the
// registered steps once, in reverse order.
package undo

import (
	"context"
	"errors"
)

// Stack is a list of undo functions. The zero value is ready to use. It is
// not safe for concurrent use.
type Stack struct {
	fns  []func(context.Context) error
	done bool
}

// Push registers fn to run on Rollback.
func (s *Stack) Push(fn func(context.Context) error) { s.fns = append(s.fns, fn) }

// Release forgets every registered function: the operation succeeded.
func (s *Stack) Release() { s.fns, s.done = nil, true }

// Rollback runs the registered functions in reverse order, once, and joins
// their errors. It runs them with a context that is not cancelled when ctx
// is, so that a cancelled operation still cleans up.
func (s *Stack) Rollback(ctx context.Context) error {
	if s.done {
		return nil
	}
	s.done = true
	ctx = context.WithoutCancel(ctx)
	var errs []error
	for i := len(s.fns) - 1; i >= 0; i-- {
		if err := s.fns[i](ctx); err != nil {
			errs = append(errs, err)
		}
	}
	s.fns = nil
	return errors.Join(errs...)
}
