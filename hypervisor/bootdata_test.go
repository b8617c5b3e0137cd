package hypervisor

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestValidateBootData(t *testing.T) {
	base := InstanceSpec{ID: "i1", Image: "img", UserData: []byte("x"), SSHKeys: []SSHKey{{Data: "checked by the backend"}},
		Files: []File{{Path: "/etc/x"}}, AuthorizedKeysUser: "root"}
	require.NoError(t, base.Validate())
	s := base
	s.AuthorizedKeysUser = "Root/.."
	assert.ErrorIs(t, s.Validate(), ErrInvalidArgument)
}
