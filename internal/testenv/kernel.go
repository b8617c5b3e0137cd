package testenv

import (
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/dockervisor/dockervisor/internal/kmod"
)

// KernelFeature is a kernel feature that some tests need and that this
// project's CI kernel lacks; the kernel lane (scripts/kernel-lane.sh) runs
// those tests on a stock Debian kernel that has them.
type KernelFeature string

// The kernel features tests ask for.
const (
	// FeatureVLAN is 802.1Q VLAN devices (CONFIG_VLAN_8021Q, module 8021q).
	FeatureVLAN KernelFeature = "vlan"
	// FeatureOVSKernelDatapath is the Open vSwitch kernel datapath
	// (CONFIG_OPENVSWITCH, module openvswitch).
	FeatureOVSKernelDatapath KernelFeature = "ovs-kernel-datapath"
)

// KernelFeaturesEnv names the environment variable that lists, separated by
// commas, the kernel features the machine must have. The kernel lane sets
// it: there a missing feature fails the tests that need it instead of
// letting them take their "feature missing" path.
const KernelFeaturesEnv = "DOCKERVISOR_TEST_KERNEL_FEATURES"

// module is the kernel module of each feature.
var module = map[KernelFeature]string{
	FeatureVLAN:              "8021q",
	FeatureOVSKernelDatapath: "openvswitch",
}

// KernelHas reports whether the running kernel has f: built in, loaded, or
// installed as a module that the kernel (or the harness) loads on first
// use. It does not load anything.
func KernelHas(f KernelFeature) bool {
	if f == FeatureVLAN {
		if _, err := os.Stat("/proc/net/vlan"); err == nil {
			return true
		}
	}
	m, ok := module[f]
	return ok && kmod.Present(m)
}

// KernelRequires reports whether the environment ([KernelFeaturesEnv])
// says the machine must have f.
func KernelRequires(f KernelFeature) bool {
	return slices.Contains(strings.Split(os.Getenv(KernelFeaturesEnv), ","), string(f))
}

// HasKernelFeature reports whether the running kernel has f (see
// [KernelHas]), so that a test can take the path for a kernel with it (real
// packets) or without it (the typed error). Where the environment requires
// f ([KernelRequires]), a missing f fails t instead.
func HasKernelFeature(t testing.TB, f KernelFeature) bool {
	t.Helper()
	has := KernelHas(f)
	if !has && KernelRequires(f) {
		t.Fatalf("%s=%q requires the kernel feature %q, and the running kernel lacks it (module %s)",
			KernelFeaturesEnv, os.Getenv(KernelFeaturesEnv), f, module[f])
	}
	return has
}
