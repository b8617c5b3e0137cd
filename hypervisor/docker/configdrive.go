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
	"github.com/dockervisor/dockervisor/hypervisor/internal/bootdata"
	"github.com/dockervisor/dockervisor/internal/undo"
	"github.com/dockervisor/dockervisor/network"
)

// Every instance has boot data (configdrive.Instance), a record of its
// own in the driver's state directory, and, unless its spec says
// NoConfigDrive, a config drive built from it: a tree in the state
// directory (see driverState), bind-mounted read-only at
// configdrive.SeedDir, where cloud-init's ConfigDrive datasource reads it
// without a block device. The create path writes both; the mount is part
// of the container's host config, so every start (reboot, power-on,
// restore) keeps it; UpdateMetadata and VIF changes rewrite the tree in
// place. An instance has a config drive exactly when its tree's directory
// exists. With WithMetadataService the boot data is also published to a
// metadata service whenever it is written, at every start (so that a
// service that lost it gets it back), and withdrawn at Destroy.

// MetadataRegistry is a metadata service the Driver publishes its
// instances' boot data to: Nova's metadata service (package
// network/metadata's Service, or its Client for a service another
// program runs), which answers an instance from its fixed IPs on its
// VIFs' networks. See WithMetadataService.
type MetadataRegistry interface {
	// Register publishes (or replaces) the boot data of instance in.UUID.
	Register(ctx context.Context, in configdrive.Instance) error
	// Unregister withdraws it; an unknown instance is no error.
	Unregister(ctx context.Context, uuid string) error
}

// WithMetadataService makes the Driver publish every instance's boot data
// (user-data, keys, metadata, VIFs) to reg when the instance is spawned,
// its metadata or VIFs change and at every start, and withdraw it at
// Destroy. A failed registration fails that operation, as a failed plug
// does. Instances then read their data over HTTP, with a config drive
// (the default) or without one (InstanceSpec.NoConfigDrive).
func WithMetadataService(reg MetadataRegistry) Option {
	return func(o *options) error {
		if reg == nil {
			return fmt.Errorf("%w: nil metadata service", hypervisor.ErrInvalidArgument)
		}
		o.metadata = reg
		return nil
	}
}

// WithConfigDriveOptions sets the options every config drive the Driver
// writes is built with: Nova's configuration for it
// (configdrive.WithDHCPDomain, configdrive.WithConfigDriveSkipVersions).
// Without it, Nova's defaults apply. An invalid option is
// ErrInvalidArgument.
func WithConfigDriveOptions(opts ...configdrive.Option) Option {
	return func(o *options) error {
		if err := configdrive.CheckOptions(opts...); err != nil {
			return fmt.Errorf("%w: %w", hypervisor.ErrInvalidArgument, err)
		}
		o.configDrive = append(o.configDrive, opts...)
		return nil
	}
}

// configDriveDir is where instance id's tree lives on the host.
func (s *driverState) configDriveDir(id string) string { return filepath.Join(s.configDrives, id) }

// removeGuest deletes instance id's boot data and config drive.
func (s *driverState) removeGuest(id string) error {
	return errors.Join(s.boot.Remove(id), os.RemoveAll(s.configDriveDir(id)))
}

// hasConfigDrive reports whether instance id has a config drive.
func (s *driverState) hasConfigDrive(id string) bool {
	_, err := os.Stat(s.configDriveDir(id))
	return err == nil
}

// prepareGuest writes the instance's boot data, its config drive unless
// the spec says NoConfigDrive, and publishes it to the metadata service,
// registering their removal first. It returns the mounts of the config
// drive (none without one).
func (d *guestRoom) prepareGuest(ctx context.Context, spec hypervisor.InstanceSpec, u *undo.Stack) ([]mount.Mount, error) {
	u.Push(func(ctx context.Context) error { return d.forgetGuest(ctx, spec.ID) })
	if err := d.writeBootData(ctx, spec.ID, bootdata.ConfigDrive(spec, spec.Metadata, spec.VIFs), !spec.NoConfigDrive); err != nil {
		return nil, err
	}
	if spec.NoConfigDrive {
		return nil, nil
	}
	m, err := d.configDriveMount(spec.ID)
	if err != nil {
		return nil, err
	}
	return []mount.Mount{m}, nil
}

// forgetGuest withdraws instance id from the metadata service and deletes
// its boot data and config drive.
func (d *guestRoom) forgetGuest(ctx context.Context, id string) error {
	return errors.Join(d.unregisterMetadata(ctx, id), d.state.removeGuest(id))
}

// unregisterMetadata withdraws instance id from the metadata service, if
// the Driver publishes to one and has boot data of id (so an ID that is
// not this Driver's is left alone).
func (d *guestRoom) unregisterMetadata(ctx context.Context, id string) error {
	if d.opts.metadata == nil {
		return nil
	}
	if _, ok, err := d.state.boot.Load(id); err != nil || !ok {
		return err
	}
	if err := d.opts.metadata.Unregister(ctx, id); err != nil {
		return fmt.Errorf("metadata service: %w", classifyMetadata(err))
	}
	return nil
}

// configDriveMount returns the read-only bind mount that shows instance
// id's config drive at configdrive.SeedDir.
func (d *guestRoom) configDriveMount(id string) (mount.Mount, error) {
	dir, err := filepath.Abs(d.state.configDriveDir(id))
	if err != nil {
		return mount.Mount{}, err
	}
	return mount.Mount{Type: mount.TypeBind, Source: dir, Target: configdrive.SeedDir, ReadOnly: true}, nil
}

// writeBootData saves the boot data, (re)builds the config drive from it
// when drive is set, and publishes it to the metadata service.
func (d *guestRoom) writeBootData(ctx context.Context, id string, in configdrive.Instance, drive bool) error {
	tree, err := configdrive.Build(in, d.opts.configDrive...)
	if err != nil {
		return fmt.Errorf("%w: %w", hypervisor.ErrInvalidArgument, err)
	}
	if err := d.state.boot.Save(id, in); err != nil {
		return fmt.Errorf("config drive: boot data: %w", err)
	}
	if drive {
		if err := configdrive.Write(d.state.configDriveDir(id), tree); err != nil {
			return fmt.Errorf("config drive: %w", err)
		}
	}
	return d.registerMetadata(ctx, in)
}

// registerMetadata publishes in to the metadata service, if any.
func (d *guestRoom) registerMetadata(ctx context.Context, in configdrive.Instance) error {
	if d.opts.metadata == nil {
		return nil
	}
	if err := d.opts.metadata.Register(ctx, in); err != nil {
		return fmt.Errorf("metadata service: %w", classifyMetadata(err))
	}
	return nil
}

// classifyMetadata gives a metadata service's error a class: its own
// class if it has one of ours, else ErrUnavailable.
func classifyMetadata(err error) error {
	if hasClass(err) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return fmt.Errorf("%w: %w", hypervisor.ErrUnavailable, err)
}

// refreshGuest brings the boot data of instance id up to date with vifs:
// when they differ from the ones it was built from, the config drive (if
// any) is rebuilt; either way the boot data is published again to the
// metadata service, so that every start (which calls this) restores a
// registration the service lost. An instance without boot data has
// nothing to refresh.
func (d *guestRoom) refreshGuest(ctx context.Context, id string, vifs []network.VIF) error {
	in, ok, err := d.state.boot.Load(id)
	if err != nil || !ok {
		return err
	}
	have, _ := json.Marshal(normVIFs(in.VIFs))
	want, _ := json.Marshal(normVIFs(vifs))
	if bytes.Equal(have, want) {
		return d.registerMetadata(ctx, in)
	}
	in.VIFs = vifs
	return d.writeBootData(ctx, id, in, d.state.hasConfigDrive(id))
}

// normVIFs makes an empty VIF list compare equal to a missing one.
func normVIFs(v []network.VIF) []network.VIF {
	if len(v) == 0 {
		return nil
	}
	return v
}

var _ hypervisor.MetadataUpdater = (*Driver)(nil)

// UpdateMetadata replaces the instance's metadata without a restart: Info
// and List report it, the config drive (meta_data.json "meta") is rebuilt
// in place, so the guest sees it at configdrive.SeedDir, and the metadata
// service (WithMetadataService) serves it.
func (d *guestRoom) UpdateMetadata(ctx context.Context, id string, metadata map[string]string) error {
	return opErr("update-metadata", id, d.updateMetadata(ctx, id, metadata))
}

func (d *guestRoom) updateMetadata(ctx context.Context, id string, md map[string]string) error {
	for k := range md {
		if k == "" {
			return fmt.Errorf("%w: empty metadata key", hypervisor.ErrInvalidArgument)
		}
	}
	t, unlock, err := d.life.lockCurrent(ctx, id)
	if err != nil {
		return err
	}
	defer unlock()
	in, hasBoot, err := d.state.boot.Load(id)
	if err != nil {
		return err
	}
	prev := t.rec
	rec := t.rec
	rec.Metadata, rec.MetadataSet = maps.Clone(md), true
	if !hasBoot {
		return d.records.save(t, rec) // an instance created before boot data was kept
	}
	// The record and the boot data change together: the journal lets a
	// new Driver rebuild them from the record if this process dies
	// between the two (recover.go).
	d.records.beginOp(t, pendUpdateMetadata)
	if err := d.records.save(t, rec); err != nil {
		t.pending = nil
		return err
	}
	in.Meta = maps.Clone(md)
	if err := d.writeBootData(ctx, id, in, d.state.hasConfigDrive(id)); err != nil {
		return errors.Join(err, d.records.save(t, prev), d.records.endOp(t))
	}
	return d.records.endOp(t)
}

// injectAuthorizedKeys writes the spec's SSH keys into the home of
// spec.AuthorizedKeysUser in a created container, keeping the keys an
// authorized_keys there already has: ~/.ssh (0700) and
// ~/.ssh/authorized_keys (0600), owned by the user.
func (d *guestRoom) injectAuthorizedKeys(ctx context.Context, api APIClient, cid string, spec hypervisor.InstanceSpec) error {
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
		return classify(err, hypervisor.ErrNotFound)
	}
	content := mergeAuthorizedKeys(existing, configdrive.Instance{Keys: bootdata.Keys(spec.SSHKeys)}.AuthorizedKeys())
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
		return classify(err, hypervisor.ErrNotFound)
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
func guestConfig(cfg *container.Config) {
	consoleConfig(cfg)
}
