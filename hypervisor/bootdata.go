package hypervisor

import (
	"fmt"
	"regexp"

	"github.com/dockervisor/dockervisor/configdrive"
	"github.com/dockervisor/dockervisor/network"
)

// userNamePattern is a POSIX-portable user name, as useradd accepts it.
var userNamePattern = regexp.MustCompile(`^[a-z_][a-z0-9_-]{0,31}$`)

// validateBootData checks the boot data of a spec. Errors wrap
// ErrInvalidArgument and the configdrive class (configdrive.ErrInvalidKey
// and the like).
func (s InstanceSpec) validateBootData() error {
	if err := configdrive.ValidateUserData(s.UserData); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidArgument, err)
	}
	if err := configdrive.ValidateKeys(s.SSHKeys); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidArgument, err)
	}
	if err := configdrive.ValidateFiles(s.Files); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidArgument, err)
	}
	if s.AuthorizedKeysUser != "" && !userNamePattern.MatchString(s.AuthorizedKeysUser) {
		return fmt.Errorf("%w: %q is not a user name", ErrInvalidArgument, s.AuthorizedKeysUser)
	}
	return nil
}

// ConfigDrive returns the config drive description of an instance spawned
// from s, with metadata md (the spec's, or the latest UpdateMetadata's)
// and vifs: the one mapping from a spec to package configdrive that every
// backend uses.
func (s InstanceSpec) ConfigDrive(md map[string]string, vifs []network.VIF) configdrive.Instance {
	return configdrive.Instance{
		UUID:      s.ID,
		Name:      s.Hostname(),
		Hostname:  s.Hostname(),
		Meta:      md,
		UserData:  s.UserData,
		Keys:      s.SSHKeys,
		AdminPass: s.AdminPassword,
		Files:     s.Files,
		VIFs:      vifs,
	}
}
