package repotest

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// module is the module path.
const module = "github.com/dockervisor/dockervisor"

// root returns the repository's root directory.
func root(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs("../..")
	require.NoError(t, err)
	_, err = os.Stat(filepath.Join(dir, "go.mod"))
	require.NoError(t, err, "the repository root has go.mod")
	return dir
}

// goFile is one parsed Go file of the repository.
type goFile struct {
	path string // relative to the root, with slashes
	pkg  string // import path of its package
	test bool   // a _test.go file
	f    *ast.File
	fset *token.FileSet
}

// parseAll parses every Go file of the repository (whatever its build
// constraints), skipping testdata and hidden directories.
func parseAll(t *testing.T) []goFile {
	t.Helper()
	base := root(t)
	var out []goFile
	err := filepath.WalkDir(base, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if p != base && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(p, ".go") {
			return nil
		}
		rel, err := filepath.Rel(base, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, p, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		pkg := module
		if dir := filepath.ToSlash(filepath.Dir(rel)); dir != "." {
			pkg += "/" + dir
		}
		out = append(out, goFile{path: rel, pkg: pkg, test: strings.HasSuffix(rel, "_test.go"), f: f, fset: fset})
		return nil
	})
	require.NoError(t, err)
	require.NotEmpty(t, out)
	return out
}

// parseSources parses in-memory sources, by file name: the synthetic
// packages the rules are proven on.
func parseSources(t *testing.T, src map[string]string) []goFile {
	t.Helper()
	var files []goFile
	for name, s := range src {
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, name, s, parser.SkipObjectResolution)
		require.NoError(t, err)
		files = append(files, goFile{path: name, f: f, fset: fset})
	}
	return files
}

// goList runs go list in the repository root with args and returns its
// output lines. It needs only the go command: no network once the module
// cache holds the dependencies.
func goList(t *testing.T, env []string, args ...string) []string {
	t.Helper()
	cmd := exec.Command("go", append([]string{"list"}, args...)...)
	cmd.Dir = root(t)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.Output()
	if ee, ok := err.(*exec.ExitError); ok {
		t.Fatalf("go list %v: %v: %s", args, err, ee.Stderr)
	}
	require.NoError(t, err, "go list %v", args)
	return strings.Fields(string(out))
}
