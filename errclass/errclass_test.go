package errclass_test

import (
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dockervisor/dockervisor/errclass"
)

// TestTableHasEveryClass enumerates the exported Err* variables of the
// package from its source, so a class added without its row in the table
// fails here.
func TestTableHasEveryClass(t *testing.T) {
	names := exportedErrs(t, ".")
	require.NotEmpty(t, names)
	all := errclass.All()
	assert.Len(t, all, len(names), "every exported Err* of the package is a class with a row in the table: %v", names)
	seen := map[string]bool{}
	for _, c := range all {
		assert.NotEmpty(t, c.Name)
		assert.False(t, seen[c.Name], "class name %q twice", c.Name)
		seen[c.Name] = true
		assert.Equal(t, []errclass.Class{c}, errclass.Matching(c.Err), "class %s matches itself alone", c.Name)
	}
}

// exportedErrs returns the names of the package-level exported variables
// whose names start with Err in the non-test files of dir.
func exportedErrs(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	var out []string
	fset := token.NewFileSet()
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".go") || strings.HasSuffix(e.Name(), "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, filepath.Join(dir, e.Name()), nil, parser.SkipObjectResolution)
		require.NoError(t, err)
		for _, d := range f.Decls {
			gd, ok := d.(*ast.GenDecl)
			if !ok || gd.Tok != token.VAR {
				continue
			}
			for _, s := range gd.Specs {
				for _, n := range s.(*ast.ValueSpec).Names {
					if n.IsExported() && strings.HasPrefix(n.Name, "Err") {
						out = append(out, n.Name)
					}
				}
			}
		}
	}
	return out
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
