package errclass_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dockervisor/dockervisor/errclass"
)

// TestTable: each class has its own name and matches itself alone. That
// every exported Err* of the package is in the table is checked with the
// module's other errors (internal/repotest): one that is not matches no
// class.
func TestTable(t *testing.T) {
	seen := map[string]bool{}
	for _, c := range errclass.All() {
		assert.NotEmpty(t, c.Name)
		assert.False(t, seen[c.Name], "class name %q twice", c.Name)
		seen[c.Name] = true
		assert.Equal(t, []errclass.Class{c}, errclass.Matching(c.Err), "class %s matches itself alone", c.Name)
	}
}

func TestOf(t *testing.T) {
	_, ok := errclass.Of(nil)
	assert.False(t, ok)
	_, ok = errclass.Of(errors.New("x"))
	assert.False(t, ok)
	c, ok := errclass.Of(fmt.Errorf("op: %w", errclass.ErrUnavailable))
	require.True(t, ok)
	assert.Equal(t, "unavailable", c.Name)
	assert.True(t, errclass.Has(fmt.Errorf("x: %w", errclass.ErrCorrupt)))
	assert.ErrorIs(t, errclass.ErrNotSupported, errors.ErrUnsupported)
}

func TestNew(t *testing.T) {
	e := errclass.New("pkg: thing missing", errclass.ErrNotFound)
	assert.Equal(t, "pkg: thing missing", e.Error())
	assert.ErrorIs(t, e, errclass.ErrNotFound)
	assert.ErrorIs(t, fmt.Errorf("get x: %w", e), e)
	assert.Len(t, errclass.Matching(e), 1)

	child := errclass.New("pkg: name too long", errclass.New("pkg: bad input", errclass.ErrInvalidArgument))
	assert.ErrorIs(t, child, errclass.ErrInvalidArgument)
	assert.Len(t, errclass.Matching(child), 1)

	assert.Panics(t, func() { errclass.New("pkg: x", errors.New("not a class")) })
	assert.Panics(t, func() {
		errclass.New("pkg: x", errors.Join(errclass.ErrNotFound, errclass.ErrUnavailable))
	})
}
