package undo

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRollbackRunsInReverseOnce(t *testing.T) {
	var s Stack
	var got []int
	for i := range 3 {
		s.Push(func(context.Context) error { got = append(got, i); return nil })
	}
	require.NoError(t, s.Rollback(t.Context()))
	require.NoError(t, s.Rollback(t.Context()))
	assert.Equal(t, []int{2, 1, 0}, got)
}

func TestRollbackJoinsErrorsAndSurvivesCancel(t *testing.T) {
	var s Stack
	e1, e2 := errors.New("one"), errors.New("two")
	s.Push(func(context.Context) error { return e1 })
	s.Push(func(ctx context.Context) error {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return e2
	})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	err := s.Rollback(ctx)
	assert.ErrorIs(t, err, e1)
	assert.ErrorIs(t, err, e2)
}

func TestReleaseForgets(t *testing.T) {
	var s Stack
	ran := false
	s.Push(func(context.Context) error { ran = true; return nil })
	s.Release()
	require.NoError(t, s.Rollback(t.Context()))
	assert.False(t, ran)
}

func TestRollbackStepsAreBounded(t *testing.T) {
	s := Stack{StepTimeout: 10 * time.Millisecond}
	var ran bool
	s.Push(func(context.Context) error { ran = true; return nil })
	// A step that would wait forever on a hung backend ends at its deadline.
	s.Push(func(ctx context.Context) error {
		<-ctx.Done()
		return ctx.Err()
	})
	err := s.Rollback(t.Context())
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.True(t, ran, "the steps after a timed-out one still run")
}
