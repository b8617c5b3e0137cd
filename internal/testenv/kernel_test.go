package testenv

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestKernelRequires(t *testing.T) {
	t.Setenv(KernelFeaturesEnv, "vlan,ovs-kernel-datapath")
	assert.True(t, KernelRequires(FeatureVLAN))
	assert.True(t, KernelRequires(FeatureOVSKernelDatapath))
	t.Setenv(KernelFeaturesEnv, "vlanx")
	assert.False(t, KernelRequires(FeatureVLAN), "whole names only")
	t.Setenv(KernelFeaturesEnv, "")
	assert.False(t, KernelRequires(FeatureVLAN))
}

// TestHasKernelFeatureFailsWhenRequired: a feature the environment
// requires and the kernel lacks fails the test; one it does not require
// answers false.
func TestHasKernelFeatureFailsWhenRequired(t *testing.T) {
	for _, f := range []KernelFeature{FeatureVLAN, FeatureOVSKernelDatapath} {
		if KernelHas(f) {
			continue // this kernel has it: nothing to prove here
		}
		t.Setenv(KernelFeaturesEnv, "")
		assert.False(t, HasKernelFeature(t, f))
		t.Setenv(KernelFeaturesEnv, string(f))
		ft := &fatalRecorder{TB: t}
		func() {
			defer func() { _ = recover() }()
			HasKernelFeature(ft, f)
		}()
		assert.True(t, ft.failed, "%s required and missing must fail", f)
	}
}

// fatalRecorder records a Fatalf instead of ending the test, and unwinds
// the caller with a panic the test recovers.
type fatalRecorder struct {
	testing.TB
	failed bool
}

func (r *fatalRecorder) Fatalf(format string, args ...any) {
	r.failed = true
	r.Logf("(expected) "+format, args...)
	panic("fatal")
}
