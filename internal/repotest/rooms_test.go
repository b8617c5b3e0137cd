package repotest

import (
	"fmt"
	"go/ast"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// roomsPkg is the package whose types are kept to rooms of at most
// maxMethods methods: the Docker backend, whose *Driver is a façade over
// rooms by concern (see its doc, "Layout").
const roomsPkg = module + "/hypervisor/docker"

// maxMethods is the most methods a type of roomsPkg may have.
const maxMethods = 60

// TestDockerBackendStaysInRooms: no type of the Docker backend (its code,
// not its tests) has more than maxMethods methods, so that a new concern
// gets a room of its own instead of growing one type without end.
func TestDockerBackendStaysInRooms(t *testing.T) {
	var files []goFile
	for _, gf := range parseAll(t) {
		if gf.pkg == roomsPkg && !gf.test {
			files = append(files, gf)
		}
	}
	counts := methodCounts(files)
	require.Contains(t, counts, "Driver", "the Driver's methods were found")
	for _, v := range overfull(counts, maxMethods) {
		assert.Fail(t, "a type of the Docker backend has too many methods", "%s: split it into rooms (see the package doc, Layout)", v)
	}
	t.Logf("methods by type: %v", counts)
}

// TestMethodCountsFindsOverfullTypes: the check counts the methods of
// each receiver type (pointer or not, generic or not, across files) and
// names the types over the bound with their counts.
func TestMethodCountsFindsOverfullTypes(t *testing.T) {
	var big strings.Builder
	big.WriteString("package p\ntype big struct{}\n")
	for i := range maxMethods + 1 {
		fmt.Fprintf(&big, "func (b *big) m%d() {}\n", i)
	}
	src := map[string]string{
		"a.go": big.String(),
		"b.go": `package p
type T struct{}
type G[K any] struct{}
func (T) a() {}
func (t *T) b() {}
func (g *G[K]) c() {}
func (g G[K]) d() {}
func free() {}
var _ = func() {}`,
		"c.go": `package p
func (t *T) e() {}`,
	}
	files := parseSources(t, src)
	counts := methodCounts(files)
	assert.Equal(t, map[string]int{"big": maxMethods + 1, "T": 3, "G": 2}, counts)
	assert.Equal(t, []string{fmt.Sprintf("big has %d methods (at most %d)", maxMethods+1, maxMethods)}, overfull(counts, maxMethods))
	delete(counts, "big")
	assert.Empty(t, overfull(counts, maxMethods))
}

// methodCounts returns how many methods each receiver type of files has,
// by type name.
func methodCounts(files []goFile) map[string]int {
	counts := map[string]int{}
	for _, gf := range files {
		for _, decl := range gf.f.Decls {
			fd, ok := decl.(*ast.FuncDecl)
			if !ok || fd.Recv == nil || len(fd.Recv.List) == 0 {
				continue
			}
			if name := recvName(fd.Recv.List[0].Type); name != "" {
				counts[name]++
			}
		}
	}
	return counts
}

// recvName returns the type name of a receiver type expression: T, *T,
// T[K] or *T[K, V].
func recvName(e ast.Expr) string {
	for {
		switch x := e.(type) {
		case *ast.StarExpr:
			e = x.X
		case *ast.ParenExpr:
			e = x.X
		case *ast.IndexExpr:
			e = x.X
		case *ast.IndexListExpr:
			e = x.X
		case *ast.Ident:
			return x.Name
		default:
			return ""
		}
	}
}

// overfull returns "T has n methods (at most max)" for each type of
// counts with more than max methods, sorted.
func overfull(counts map[string]int, maxN int) []string {
	var out []string
	for name, n := range counts {
		if n > maxN {
			out = append(out, fmt.Sprintf("%s has %d methods (at most %d)", name, n, maxN))
		}
	}
	sort.Strings(out)
	return out
}
