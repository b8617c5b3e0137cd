package testenv

import (
	"net/http"
	"os"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestMustHaveGlance(t *testing.T) {
	ep := MustHaveGlance(t)
	resp, err := http.Get(ep + "v2/images")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, ep, MustHaveGlance(t), "one glance-api per process")
}

func TestMain(m *testing.M) {
	code := m.Run()
	StopGlance()
	os.Exit(code)
}
