package undo

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
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

func TestFailKeepsTheOperationsErrorAndLogsEachStep(t *testing.T) {
	var logs bytes.Buffer
	s := Stack{Log: slog.New(slog.NewJSONHandler(&logs, nil)), Op: "plug", ID: "vm-1"}
	opErr, stepErr := errors.New("operation failed"), errors.New("device busy")
	s.Push(func(context.Context) error { return stepErr })
	err := s.Fail(t.Context(), opErr)
	require.ErrorIs(t, err, opErr)
	assert.NotErrorIs(t, err, stepErr, "the rollback never changes what the error is")
	assert.Equal(t, "operation failed (rollback incomplete: device busy)", err.Error())
	var ue *Error
	require.ErrorAs(t, err, &ue)
	assert.ErrorIs(t, ue.Rollback, stepErr)

	var rec map[string]any
	require.NoError(t, json.Unmarshal(logs.Bytes(), &rec))
	assert.Equal(t, "WARN", rec["level"])
	assert.Equal(t, "plug", rec["op"])
	assert.Equal(t, "vm-1", rec["id"])
	assert.Equal(t, "device busy", rec["err"])
}

func TestFailWithoutRollbackFailures(t *testing.T) {
	var s Stack
	ran := false
	s.Push(func(context.Context) error { ran = true; return nil })
	opErr := errors.New("x")
	assert.Same(t, opErr, s.Fail(t.Context(), opErr))
	assert.True(t, ran)
	var n Stack
	n.Push(func(context.Context) error { t.Error("no rollback for a nil error"); return nil })
	assert.NoError(t, n.Fail(t.Context(), nil))
}
