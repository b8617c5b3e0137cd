package docker

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/client"

	"github.com/dockervisor/dockervisor/configdrive"
	"github.com/dockervisor/dockervisor/hypervisor"
	"github.com/dockervisor/dockervisor/internal/undo"
)

// Every instance gets a config drive: its directory in the state
// directory, bind-mounted read-only at configdrive.SeedDir, where
// cloud-init's ConfigDrive datasource reads it without a block device. The
// mount is part of the container's host config, so it holds after every
// start, reboot and restore; UpdateMetadata rewrites the tree in place.
//
//	<state dir>/<id>.guest/boot.json      the boot data (0600): configdrive.Instance as JSON
//	<state dir>/<id>.guest/config_drive/  the tree (ec2/, openstack/)

func (d *Driver) guestDir(id string) string { return filepath.Join(d.state.dir, id+".guest") }

func (d *Driver) configDriveDir(id string) string {
	return filepath.Join(d.guestDir(id), "config_drive")
}

func (d *Driver) bootFile(id string) string { return filepath.Join(d.guestDir(id), "boot.json") }

// prepareConfigDrive writes the instance's boot data and config drive and
// returns the mount that shows the drive in the container. Its undo
// removes both.
func (d *Driver) prepareConfigDrive(spec hypervisor.InstanceSpec, u *undo.Stack) (mount.Mount, error) {
	in := spec.ConfigDrive(spec.Metadata, nil)
	dir, err := filepath.Abs(d.configDriveDir(spec.ID))
	if err != nil {
		return mount.Mount{}, err
	}
	u.Push(func(context.Context) error { return os.RemoveAll(d.guestDir(spec.ID)) })
	if err := os.MkdirAll(d.guestDir(spec.ID), 0o700); err != nil {
		return mount.Mount{}, fmt.Errorf("config drive: %w", err)
	}
	if err := d.writeConfigDrive(spec.ID, in); err != nil {
		return mount.Mount{}, err
	}
	return mount.Mount{Type: mount.TypeBind, Source: dir, Target: configdrive.SeedDir, ReadOnly: true}, nil
}

// writeConfigDrive saves the boot data and (re)builds the tree from it.
func (d *Driver) writeConfigDrive(id string, in configdrive.Instance) error {
	tree, err := configdrive.Build(in)
	if err != nil {
		return fmt.Errorf("%w: %w", hypervisor.ErrInvalidArgument, err)
	}
	b, err := json.Marshal(in)
	if err != nil {
		return err
	}
	if err := writeFileAtomic(d.bootFile(id), b); err != nil {
		return fmt.Errorf("config drive: boot data: %w", err)
	}
	if err := os.Chmod(d.bootFile(id), 0o600); err != nil {
		return fmt.Errorf("config drive: %w", err)
	}
	if err := configdrive.Write(d.configDriveDir(id), tree); err != nil {
		return fmt.Errorf("config drive: %w", err)
	}
	return nil
}

// loadBoot reads an instance's boot data; ok is false for an instance
// without a config drive (created by an older driver).
func (d *Driver) loadBoot(id string) (in configdrive.Instance, ok bool, err error) {
	b, err := os.ReadFile(d.bootFile(id))
	if errors.Is(err, fs.ErrNotExist) {
		return in, false, nil
	}
	if err != nil {
		return in, false, fmt.Errorf("config drive: %w", err)
	}
	if err := json.Unmarshal(b, &in); err != nil {
		return in, false, fmt.Errorf("config drive: decode %s: %w", d.bootFile(id), err)
	}
	return in, true, nil
}

var _ hypervisor.MetadataUpdater = (*Driver)(nil)

// UpdateMetadata replaces the instance's metadata without a restart: Info
// and List report it, and the config drive (meta_data.json "meta") is
// rebuilt in place, so the guest sees it at configdrive.SeedDir.
func (d *Driver) UpdateMetadata(ctx context.Context, id string, metadata map[string]string) error {
	return opErr("update-metadata", id, d.updateMetadata(ctx, id, metadata))
}

func (d *Driver) updateMetadata(ctx context.Context, id string, md map[string]string) error {
	for k := range md {
		if k == "" {
			return fmt.Errorf("%w: empty metadata key", hypervisor.ErrInvalidArgument)
		}
	}
	api, unlock, err := d.begin(ctx, id)
	if err != nil {
		return err
	}
	defer unlock()
	_, st, _, err := d.current(ctx, api, id)
	if err != nil {
		return err
	}
	in, hasDrive, err := d.loadBoot(id)
	if err != nil {
		return err
	}
	prev := st
	st.Metadata, st.MetadataSet = maps.Clone(md), true
	if err := d.state.save(st); err != nil {
		return err
	}
	if !hasDrive {
		return nil
	}
	in.Meta = maps.Clone(md)
	if err := d.writeConfigDrive(id, in); err != nil {
		return errors.Join(err, d.state.save(prev))
	}
	return nil
}

// injectAuthorizedKeys writes the spec's SSH keys into the home of
// spec.AuthorizedKeysUser in a created container, keeping the keys an
// authorized_keys there already has: ~/.ssh (0700) and
// ~/.ssh/authorized_keys (0600), owned by the user.
func (d *Driver) injectAuthorizedKeys(ctx context.Context, api APIClient, cid string, spec hypervisor.InstanceSpec) error {
	if spec.AuthorizedKeysUser == "" {
		return nil
	}
	passwd, err := readContainerFile(ctx, api, cid, "/etc/passwd")
	if err != nil {
		return fmt.Errorf("%w: authorized keys: read /etc/passwd: %w", hypervisor.ErrInvalidArgument, err)
	}
	uid, gid, home, ok := lookupUser(passwd, spec.AuthorizedKeysUser)
	if !ok {
		return fmt.Errorf("%w: authorized keys: user %q is not in the image's /etc/passwd", hypervisor.ErrInvalidArgument, spec.AuthorizedKeysUser)
	}
	if !path.IsAbs(home) || strings.Contains(home, "..") {
		return fmt.Errorf("%w: authorized keys: user %q has home %q", hypervisor.ErrInvalidArgument, spec.AuthorizedKeysUser, home)
	}
	existing, err := readContainerFile(ctx, api, cid, path.Join(home, ".ssh/authorized_keys"))
	if err != nil && !isNotFound(err) {
		return translate(err, hypervisor.ErrNotFound)
	}
	content := mergeAuthorizedKeys(existing, configdrive.Instance{Keys: spec.SSHKeys}.AuthorizedKeys())
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	hdrs := []*tar.Header{
		{Typeflag: tar.TypeDir, Name: ".ssh/", Mode: 0o700, Uid: uid, Gid: gid},
		{Typeflag: tar.TypeReg, Name: ".ssh/authorized_keys", Mode: 0o600, Uid: uid, Gid: gid, Size: int64(len(content))},
	}
	for _, h := range hdrs {
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
	}
	if _, err := tw.Write(content); err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return err
	}
	_, err = api.CopyToContainer(ctx, cid, client.CopyToContainerOptions{DestinationPath: home, Content: &buf})
	if err != nil {
		if isNotFound(err) {
			return fmt.Errorf("%w: authorized keys: home %s of %q does not exist in the image: %w", hypervisor.ErrInvalidArgument, home, spec.AuthorizedKeysUser, err)
		}
		return translate(err, hypervisor.ErrNotFound)
	}
	return nil
}

// readContainerFile returns the content of a regular file in a container.
func readContainerFile(ctx context.Context, api APIClient, cid, p string) ([]byte, error) {
	res, err := api.CopyFromContainer(ctx, cid, client.CopyFromContainerOptions{SourcePath: p})
	if err != nil {
		return nil, err
	}
	defer res.Content.Close()
	tr := tar.NewReader(res.Content)
	for {
		h, err := tr.Next()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil, fmt.Errorf("%s: empty archive", p)
			}
			return nil, err
		}
		if h.Typeflag == tar.TypeReg {
			return io.ReadAll(io.LimitReader(tr, 4<<20))
		}
	}
}

// lookupUser finds name in an /etc/passwd file.
func lookupUser(passwd []byte, name string) (uid, gid int, home string, ok bool) {
	sc := bufio.NewScanner(bytes.NewReader(passwd))
	for sc.Scan() {
		f := strings.Split(sc.Text(), ":")
		if len(f) < 7 || f[0] != name {
			continue
		}
		u, err1 := strconv.Atoi(f[2])
		g, err2 := strconv.Atoi(f[3])
		if err1 != nil || err2 != nil {
			return 0, 0, "", false
		}
		return u, g, f[5], true
	}
	return 0, 0, "", false
}

// mergeAuthorizedKeys appends the lines of add that existing lacks.
func mergeAuthorizedKeys(existing, add []byte) []byte {
	have := map[string]bool{}
	out := bytes.Clone(existing)
	if len(out) > 0 && out[len(out)-1] != '\n' {
		out = append(out, '\n')
	}
	for _, l := range strings.Split(string(existing), "\n") {
		have[strings.TrimSpace(l)] = true
	}
	for _, l := range strings.Split(string(add), "\n") {
		if l = strings.TrimSpace(l); l != "" && !have[l] {
			out = append(out, l+"\n"...)
			have[l] = true
		}
	}
	return out
}

// guestConfig adds to a new container's config what guest access needs: a
// console terminal, and the config drive mount.
func guestConfig(cfg *container.Config, hc *container.HostConfig, drive mount.Mount) {
	consoleConfig(cfg)
	hc.Mounts = append(hc.Mounts, drive)
}
