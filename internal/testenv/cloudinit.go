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

var novaProbe = sync.OnceValue(func() error {
	return exec.Command(CloudInitPython, "-c",
		"import nova.api.metadata.base, nova.virt.netutils, nova.virt.configdrive, nova.tests.unit.fake_network_cache_model").Run()
})

// MustHaveNova returns the Python interpreter that can import Nova's
// metadata and config drive code and its network model (Debian package
// python3-nova, no services). It skips (or fails in CI) when Nova is not
// installed.
func MustHaveNova(t testing.TB) string {
	t.Helper()
	if err := novaProbe(); err != nil {
		Missing(t, "Nova (Debian package python3-nova) is not importable by %s: %v", CloudInitPython, err)
	}
	return CloudInitPython
}
