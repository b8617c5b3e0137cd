package hypervisor

import (
	"crypto/ed25519"
	"crypto/rand"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"

	"github.com/dockervisor/dockervisor/configdrive"
)

func TestValidateBootData(t *testing.T) {
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	sk, err := ssh.NewPublicKey(pub)
	require.NoError(t, err)
	key := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sk)))
	base := InstanceSpec{ID: "i1", Image: "img", UserData: []byte("x"), SSHKeys: []configdrive.Key{{Data: key}},
		Files: []configdrive.File{{Path: "/etc/x"}}, AuthorizedKeysUser: "root"}
	require.NoError(t, base.Validate())

	cases := []struct {
		name  string
		mod   func(*InstanceSpec)
		class error
	}{
		{"user-data", func(s *InstanceSpec) { s.UserData = make([]byte, configdrive.MaxUserDataBytes+1) }, configdrive.ErrUserDataTooLarge},
		{"key", func(s *InstanceSpec) { s.SSHKeys = []configdrive.Key{{Data: "nope"}} }, configdrive.ErrInvalidKey},
		{"path", func(s *InstanceSpec) { s.Files = []configdrive.File{{Path: "/sys/x"}} }, configdrive.ErrInvalidPath},
		{"user", func(s *InstanceSpec) { s.AuthorizedKeysUser = "Root/.." }, nil},
	}
	for _, c := range cases {
		s := base
		c.mod(&s)
		err := s.Validate()
		assert.ErrorIs(t, err, ErrInvalidArgument, c.name)
		if c.class != nil {
			assert.ErrorIs(t, err, c.class, c.name)
		}
	}
	cd := base.ConfigDrive(map[string]string{"a": "b"}, nil)
	assert.Equal(t, "i1", cd.UUID)
	assert.Equal(t, "i1", cd.Hostname)
	assert.Equal(t, map[string]string{"a": "b"}, cd.Meta)
	assert.Equal(t, base.SSHKeys, cd.Keys)
}
