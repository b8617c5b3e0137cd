package bootdata_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"reflect"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"

	"github.com/dockervisor/dockervisor/configdrive"
	"github.com/dockervisor/dockervisor/hypervisor"
	"github.com/dockervisor/dockervisor/hypervisor/internal/bootdata"
)

func TestValidate(t *testing.T) {
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	sk, err := ssh.NewPublicKey(pub)
	require.NoError(t, err)
	key := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sk)))
	base := hypervisor.InstanceSpec{ID: "i1", Image: "img", UserData: []byte("x"), SSHKeys: []hypervisor.SSHKey{{Data: key}},
		Files: []hypervisor.File{{Path: "/etc/x"}}}
	require.NoError(t, bootdata.Validate(base))

	cases := []struct {
		name  string
		mod   func(*hypervisor.InstanceSpec)
		class error
	}{
		{"user-data", func(s *hypervisor.InstanceSpec) { s.UserData = make([]byte, configdrive.MaxUserDataBytes+1) }, configdrive.ErrUserDataTooLarge},
		{"key", func(s *hypervisor.InstanceSpec) { s.SSHKeys = []hypervisor.SSHKey{{Data: "nope"}} }, configdrive.ErrInvalidKey},
		{"duplicate key name", func(s *hypervisor.InstanceSpec) {
			s.SSHKeys = []hypervisor.SSHKey{{Name: "k", Data: key}, {Name: "k", Data: key}}
		}, configdrive.ErrInvalidKey},
		{"path", func(s *hypervisor.InstanceSpec) { s.Files = []hypervisor.File{{Path: "/sys/x"}} }, configdrive.ErrInvalidPath},
	}
	for _, c := range cases {
		s := base
		c.mod(&s)
		err := bootdata.Validate(s)
		assert.ErrorIs(t, err, hypervisor.ErrInvalidArgument, c.name)
		assert.ErrorIs(t, err, c.class, c.name)
	}
}

func TestConfigDrive(t *testing.T) {
	s := hypervisor.InstanceSpec{ID: "i1", Image: "img", UserData: []byte("ud"), AdminPassword: "pw",
		SSHKeys: []hypervisor.SSHKey{{Name: "me", Data: "ssh-ed25519 AAAA me"}},
		Files:   []hypervisor.File{{Path: "/etc/motd", Content: []byte("hi")}}}
	cd := bootdata.ConfigDrive(s, map[string]string{"a": "b"}, nil)
	assert.Equal(t, configdrive.Instance{
		UUID: "i1", Name: "i1", Hostname: "i1", Meta: map[string]string{"a": "b"}, UserData: []byte("ud"), AdminPass: "pw",
		Keys:  []configdrive.Key{{Name: "me", Data: "ssh-ed25519 AAAA me"}},
		Files: []configdrive.File{{Path: "/etc/motd", Content: []byte("hi")}},
	}, cd)
	assert.Nil(t, bootdata.Keys(nil))
	assert.Nil(t, bootdata.Files(nil))
}

// TestTypesMatchConfigDrive: the contract's key and file types have the
// fields (and JSON names) of configdrive's, so the mapping loses nothing.
func TestTypesMatchConfigDrive(t *testing.T) {
	for _, pair := range [][2]any{{hypervisor.SSHKey{}, configdrive.Key{}}, {hypervisor.File{}, configdrive.File{}}} {
		a, b := reflect.TypeOf(pair[0]), reflect.TypeOf(pair[1])
		require.Equal(t, b.NumField(), a.NumField(), "%s and %s", a, b)
		for i := range a.NumField() {
			fa, fb := a.Field(i), b.Field(i)
			assert.Equal(t, fb.Name, fa.Name)
			assert.Equal(t, fb.Type, fa.Type)
			assert.Equal(t, fb.Tag, fa.Tag)
		}
	}
}
