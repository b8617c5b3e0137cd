package ovsrun_test

import (
	"fmt"
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dockervisor/dockervisor/internal/ovsrun"
	"github.com/dockervisor/dockervisor/internal/testenv"
)

// TestStartStop starts a private switch, checks its bridge is working and
// that Stop leaves nothing behind.
func TestStartStop(t *testing.T) {
	testenv.MustHaveRoot(t)
	if _, err := os.Stat(ovsrun.Schema); err != nil {
		testenv.Missing(t, "Open vSwitch: %v", err)
	}
	name := testenv.UniqueName("dvrun")
	s, err := ovsrun.Start(t.Context(), name)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Stop() })
	ofport, err := s.Vsctl(t.Context(), "get", "Interface", s.Bridge, "ofport")
	require.NoError(t, err)
	assert.Equal(t, "65534", ofport, "bridge working")
	dp, err := s.Vsctl(t.Context(), "get", "Bridge", s.Bridge, "datapath_type")
	require.NoError(t, err)
	assert.Equal(t, s.Datapath, dp)
	if testenv.KernelHas(testenv.FeatureOVSKernelDatapath) {
		assert.Equal(t, ovsrun.DatapathSystem, dp, "the kernel has the Open vSwitch module")
	} else {
		assert.Equal(t, ovsrun.DatapathNetdev, dp, "no Open vSwitch module")
	}
	require.NoError(t, s.Stop())
	require.NoError(t, s.Stop(), "Stop twice")
	assert.NoDirExists(t, s.Dir)
	assert.NoFileExists(t, fmt.Sprintf("/run/netns/%s", name))
}
