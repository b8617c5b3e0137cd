// Package bootdata maps the boot data of an instance spec (user-data, SSH
// keys, files, metadata, VIFs) onto package configdrive: the one mapping
// and the one validation of it that every backend of this module (the
// Docker backend, the Fake) uses. It lives with the backends, not in the
// contract, so that package hypervisor imports nothing backend-specific.
package bootdata

import (
	"github.com/dockervisor/dockervisor/configdrive"
	"github.com/dockervisor/dockervisor/hypervisor"
	"github.com/dockervisor/dockervisor/network"
)

// Validate checks the boot data of s as its config drive will take it:
// the user-data's size, every key (it must parse; names are unique) and
// every file's path. Its errors are configdrive's (such as
// configdrive.ErrInvalidKey), which are hypervisor.ErrInvalidArgument.
func Validate(s hypervisor.InstanceSpec) error {
	if err := configdrive.ValidateUserData(s.UserData); err != nil {
		return err
	}
	if err := configdrive.ValidateKeys(Keys(s.SSHKeys)); err != nil {
		return err
	}
	return configdrive.ValidateFiles(Files(s.Files))
}

// ConfigDrive returns the config drive description of an instance spawned
// from s, with metadata md (the spec's, or the latest UpdateMetadata's)
// and vifs.
func ConfigDrive(s hypervisor.InstanceSpec, md map[string]string, vifs []network.VIF) configdrive.Instance {
	return configdrive.Instance{
		UUID:      s.ID,
		Name:      s.Hostname(),
		Hostname:  s.Hostname(),
		Meta:      md,
		UserData:  s.UserData,
		Keys:      Keys(s.SSHKeys),
		AdminPass: s.AdminPassword,
		Files:     Files(s.Files),
		VIFs:      vifs,
	}
}

// Keys returns keys as configdrive keys.
func Keys(keys []hypervisor.SSHKey) []configdrive.Key {
	if keys == nil {
		return nil
	}
	out := make([]configdrive.Key, len(keys))
	for i, k := range keys {
		out[i] = configdrive.Key{Name: k.Name, Data: k.Data}
	}
	return out
}

// Files returns files as configdrive files.
func Files(files []hypervisor.File) []configdrive.File {
	if files == nil {
		return nil
	}
	out := make([]configdrive.File, len(files))
	for i, f := range files {
		out[i] = configdrive.File{Path: f.Path, Content: f.Content}
	}
	return out
}
