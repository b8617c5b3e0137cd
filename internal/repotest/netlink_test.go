package repotest

import (
	"fmt"
	"go/ast"
	"path"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

// netlinkPath is the netlink library whose dumps must be retried.
const netlinkPath = "github.com/vishvananda/netlink"

// dumpWrapper is the one package allowed to call netlink's dumps: it
// retries the ones the kernel interrupted.
const dumpWrapper = module + "/network/nldump"

// dumpCalls are netlink's functions and *netlink.Handle methods that read
// a table (and may see netlink.ErrDumpInterrupted).
var dumpCalls = map[string]bool{
	"LinkList": true, "LinkByName": true, "LinkByIndex": true, "LinkByAlias": true,
	"AddrList": true, "RouteList": true, "RouteListFiltered": true, "RouteListFilteredIter": true,
	"NeighList": true, "NeighListExecute": true, "RuleList": true, "RuleListFiltered": true,
	"QdiscList": true, "ClassList": true, "FilterList": true, "LinkGetProtinfo": true,
	"BridgeVlanList": true,
}

// TestNetlinkDumpsGoThroughTheWrapper: no code but package nldump calls a
// netlink dump itself (on the netlink package or a *netlink.Handle), so
// none forgets to retry an interrupted dump. Tests are held to it too: an
// interrupted dump in a test is a flake.
func TestNetlinkDumpsGoThroughTheWrapper(t *testing.T) {
	byPkg := map[string][]goFile{}
	for _, gf := range parseAll(t) {
		byPkg[gf.pkg] = append(byPkg[gf.pkg], gf)
	}
	n := 0
	for pkg, files := range byPkg {
		if pkg == dumpWrapper {
			continue
		}
		for _, v := range rawDumps(files) {
			n++
			assert.Fail(t, "raw netlink dump", "%s: use package nldump, which retries interrupted dumps", v)
		}
	}
	t.Logf("%d packages checked", len(byPkg))
	assert.Zero(t, n)
}

// TestRawDumpsFindsThem: the check finds the forms of a raw dump.
func TestRawDumpsFindsThem(t *testing.T) {
	src := map[string]string{
		"a.go": `package p
import nl "github.com/vishvananda/netlink"
type ns struct{ h *nl.Handle }
func (n *ns) Handle() *nl.Handle { return n.h }
func f(n *ns, hp *nl.Handle) {
	nl.LinkList()
	h, _ := nl.NewHandle()
	h.LinkByName("x")
	hp.AddrList(nil, 0)
	n.h.RouteList(nil, 0)
	n.Handle().LinkByIndex(1)
	var other interface{ LinkList() }
	other.LinkList() // not netlink's
	h.LinkSetUp(nil) // not a dump
}`,
		"b.go": `package p
func g(n *ns) { n.h.NeighList(0, 0) }`,
	}
	files := parseSources(t, src)
	got := rawDumps(files)
	var calls []string
	for _, v := range got {
		calls = append(calls, v[strings.LastIndex(v, " ")+1:])
	}
	assert.ElementsMatch(t, []string{"LinkList", "LinkByName", "AddrList", "RouteList", "LinkByIndex", "NeighList"}, calls, "%v", got)
}

// rawDumps returns "file:line: call" for each netlink dump the package's
// files call on the netlink package or on a *netlink.Handle. The handles
// are found from the source: names declared as *netlink.Handle (variables,
// parameters, fields), names given netlink.NewHandle/NewHandleAt's result,
// and calls of a method named Handle (linkutil.NS's accessor).
func rawDumps(files []goFile) []string {
	handles := map[string]bool{}
	pkgNames := map[*ast.File]string{}
	for _, gf := range files {
		name := netlinkName(gf.f)
		if name == "" {
			continue
		}
		pkgNames[gf.f] = name
		isHandle := func(e ast.Expr) bool {
			st, ok := e.(*ast.StarExpr)
			if !ok {
				return false
			}
			sel, ok := st.X.(*ast.SelectorExpr)
			if !ok {
				return false
			}
			id, ok := sel.X.(*ast.Ident)
			return ok && id.Name == name && sel.Sel.Name == "Handle"
		}
		ast.Inspect(gf.f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.Field:
				if isHandle(n.Type) {
					for _, id := range n.Names {
						handles[id.Name] = true
					}
				}
			case *ast.ValueSpec:
				if n.Type != nil && isHandle(n.Type) {
					for _, id := range n.Names {
						handles[id.Name] = true
					}
				}
			case *ast.AssignStmt:
				if len(n.Rhs) == 1 {
					if c, ok := n.Rhs[0].(*ast.CallExpr); ok {
						if sel, ok := c.Fun.(*ast.SelectorExpr); ok && strings.HasPrefix(sel.Sel.Name, "NewHandle") {
							if x, ok := sel.X.(*ast.Ident); ok && x.Name == name && len(n.Lhs) > 0 {
								if id, ok := n.Lhs[0].(*ast.Ident); ok {
									handles[id.Name] = true
								}
							}
						}
					}
				}
			}
			return true
		})
	}
	var out []string
	for _, gf := range files {
		name := netlinkName(gf.f)
		ast.Inspect(gf.f, func(n ast.Node) bool {
			c, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			sel, ok := c.Fun.(*ast.SelectorExpr)
			if !ok || !dumpCalls[sel.Sel.Name] {
				return true
			}
			raw := false
			switch x := sel.X.(type) {
			case *ast.Ident:
				raw = (name != "" && x.Name == name) || handles[x.Name]
			case *ast.SelectorExpr:
				raw = handles[x.Sel.Name]
			case *ast.CallExpr:
				if f, ok := x.Fun.(*ast.SelectorExpr); ok && f.Sel.Name == "Handle" {
					raw = true
				}
			}
			if raw {
				out = append(out, fmt.Sprintf("%s:%d: %s", gf.path, gf.fset.Position(c.Pos()).Line, sel.Sel.Name))
			}
			return true
		})
	}
	return out
}

// netlinkName returns the name the file imports the netlink library as,
// or "".
func netlinkName(f *ast.File) string {
	for _, imp := range f.Imports {
		p, _ := strconv.Unquote(imp.Path.Value)
		if p != netlinkPath {
			continue
		}
		if imp.Name != nil {
			return imp.Name.Name
		}
		return path.Base(p)
	}
	return ""
}
