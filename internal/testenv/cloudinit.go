package testenv

import (
	"os/exec"
	"sync"
	"testing"
)

// CloudInitPython is the interpreter that has Debian's cloud-init modules.
// It is named by its full path: a python3 earlier in PATH (a pyenv shim,
// say) does not see the distribution's packages.
const CloudInitPython = "/usr/bin/python3"

var cloudInitProbe = sync.OnceValue(func() error {
	return exec.Command(CloudInitPython, "-c", "import cloudinit.sources.DataSourceConfigDrive").Run()
})

// MustHaveCloudInit returns the Python interpreter that can import
// cloud-init's ConfigDrive datasource (Debian package cloud-init). It skips
// (or fails in CI) when cloud-init is not installed.
func MustHaveCloudInit(t testing.TB) string {
	t.Helper()
	SkipShort(t, "cloud-init")
	if err := cloudInitProbe(); err != nil {
		Missing(t, "cloud-init (Debian package cloud-init) is not importable by %s: %v", CloudInitPython, err)
	}
	return CloudInitPython
}
