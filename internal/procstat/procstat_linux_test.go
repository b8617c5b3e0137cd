package procstat

import (
	"os"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestFieldsOfThisProcess(t *testing.T) {
	f, err := Fields(os.Getpid())
	require.NoError(t, err)
	require.Greater(t, len(f), 19)
	assert.Equal(t, "R", f[0], "field 3: this process runs while it reads")
	assert.Equal(t, strconv.Itoa(os.Getppid()), f[1], "field 4: the parent")
	_, err = Fields(-1)
	assert.Error(t, err)
}
