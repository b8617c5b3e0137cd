package repotest

import (
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
