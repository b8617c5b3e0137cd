package repotest

import (
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

// contract are the contract packages: they build on every OS and import
// nothing but the standard library and each other (and the error
// classes), so that nothing Linux- or backend-specific leaks into what
// every backend and every caller shares.
var contract = []string{"hypervisor", "image", "network", "stats"}

// contractDeps are the module packages a contract package may depend on.
var contractDeps = map[string]bool{
	module + "/errclass":   true,
	module + "/hypervisor": true,
	module + "/image":      true,
	module + "/network":    true,
	module + "/stats":      true,
}

func TestContractImportsNothingSpecific(t *testing.T) {
	args := []string{"-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}"}
	for _, p := range contract {
		args = append(args, "./"+p)
	}
	for _, goos := range []string{"linux", "darwin", "windows"} {
		for _, dep := range goList(t, []string{"GOOS=" + goos}, args...) {
			assert.True(t, contractDeps[dep], "GOOS=%s: a contract package (%v) depends on %s", goos, contract, dep)
		}
	}
}

// TestExamplesImportOnlyPublicPackages: a user can copy an example out of
// the repository, so its code imports no internal package of the module
// (tests may: they run here).
func TestExamplesImportOnlyPublicPackages(t *testing.T) {
	n := 0
	for _, gf := range parseAll(t) {
		if gf.test || !strings.HasPrefix(gf.path, "examples/") {
			continue
		}
		n++
		for _, imp := range gf.f.Imports {
			p, err := strconv.Unquote(imp.Path.Value)
			if err != nil {
				t.Fatal(err)
			}
			if strings.HasPrefix(p, module+"/") && (strings.Contains(p, "/internal/") || strings.HasSuffix(p, "/internal")) {
				assert.Fail(t, "an example imports an internal package", "%s imports %s", gf.path, p)
			}
		}
	}
	assert.NotZero(t, n, "the examples' files were found")
}
