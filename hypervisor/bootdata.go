package hypervisor

import (
	"fmt"
	"regexp"
)

// userNamePattern is a POSIX-portable user name, as useradd accepts it.
var userNamePattern = regexp.MustCompile(`^[a-z_][a-z0-9_-]{0,31}$`)

// validateBootData checks what the contract says of a spec's boot data:
// the user name of AuthorizedKeysUser. The keys, files and user-data are
// checked by the backend, as its config drive takes them.
func (s InstanceSpec) validateBootData() error {
	if s.AuthorizedKeysUser != "" && !userNamePattern.MatchString(s.AuthorizedKeysUser) {
		return fmt.Errorf("%w: %q is not a user name", ErrInvalidArgument, s.AuthorizedKeysUser)
	}
	return nil
}
