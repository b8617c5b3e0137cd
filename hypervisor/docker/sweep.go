package docker

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/moby/moby/client"

	"github.com/dockervisor/dockervisor/hypervisor"
	"github.com/dockervisor/dockervisor/internal/statestore"
	"github.com/dockervisor/dockervisor/snapshot"
)

// commitTagPrefix starts the tag of every image this Driver's snapshots
// commit in snapshot.CommitRepository: a hash of the label and name
// prefixes, so that a driver finds its own committed images and no other
// driver's.
func (d *recordRoom) commitTagPrefix() string {
	sum := sha256.Sum256([]byte(d.opts.labelPrefix + "_" + d.opts.namePrefix))
	return "dv" + hex.EncodeToString(sum[:6]) + "-"
}

// legacyCommitTag is the tag earlier versions gave every committed image:
// 24 random hex digits, no driver prefix.
var legacyCommitTag = regexp.MustCompile(`^[0-9a-f]{24}$`)

// ownCommitRefs returns the references under which img holds one of this
// driver's committed images: tags with this driver's prefix, or the
// unprefixed tags of earlier versions on an image that carries this
// driver's instance label (it committed a container of this label
// prefix).
func (d *recordRoom) ownCommitRefs(tags []string, labels map[string]string) []string {
	var out []string
	for _, ref := range tags {
		tag, ok := strings.CutPrefix(ref, snapshot.CommitRepository+":")
		if !ok {
			continue
		}
		if strings.HasPrefix(tag, d.commitTagPrefix()) || legacyCommitTag.MatchString(tag) && labels[d.label(labelInstanceID)] != "" {
			out = append(out, ref)
		}
	}
	return out
}

// removeCommitted removes this driver's committed images that no snapshot
// in progress uses: those of instance only, or, with only "", all. A
// committed image names its instance in its labels (a commit keeps the
// container's); an instance whose lock another call holds may be taking a
// snapshot, and one whose record's journal names the image with a live
// owner is, so their images stay. The caller holds the lock of only, if
// it is not "". It returns the references it removed.
func (d *recordRoom) removeCommitted(ctx context.Context, api APIClient, only string) ([]string, error) {
	res, err := api.ImageList(ctx, client.ImageListOptions{Filters: make(client.Filters).Add("reference", snapshot.CommitRepository+":*")})
	if err != nil {
		return nil, classify(err, hypervisor.ErrImageNotFound)
	}
	var removed []string
	var errs []error
	for _, img := range res.Items {
		refs := d.ownCommitRefs(img.RepoTags, img.Labels)
		id := img.Labels[d.label(labelInstanceID)]
		if len(refs) == 0 || only != "" && id != only {
			continue
		}
		if id != "" && id != only {
			unlock, ok := d.locks.TryLock(id)
			if !ok {
				continue // a call works on the instance: maybe this snapshot
			}
			refs = d.unusedCommitRefs(id, refs)
			unlock()
		} else if id != "" {
			refs = d.unusedCommitRefs(id, refs)
		}
		for _, ref := range refs {
			_, err := api.ImageRemove(ctx, ref, client.ImageRemoveOptions{PruneChildren: true})
			switch {
			case err == nil:
				removed = append(removed, ref)
			case !isNotFound(err):
				errs = append(errs, fmt.Errorf("remove committed image %s: %w", ref, classify(err, hypervisor.ErrImageNotFound)))
			}
		}
	}
	return removed, errors.Join(errs...)
}

// unusedCommitRefs drops from refs the committed image that a live
// snapshot of instance id (another process's) records in its journal.
func (d *recordRoom) unusedCommitRefs(id string, refs []string) []string {
	rec, ok, err := d.state.instances.Load(id)
	if err != nil || !ok || rec.Pending == nil || rec.Pending.CommitRef == "" || d.ownerGone(rec.Pending.Owner) {
		return refs
	}
	out := refs[:0:0]
	for _, r := range refs {
		if r != rec.Pending.CommitRef {
			out = append(out, r)
		}
	}
	return out
}

// sweep is the remove policy's cleanup of what no instance owns (see
// Reconcile): committed images, temporary files, and the guest files of
// instances that have neither a record nor a container. ids are the
// instances the reconcile saw (containers and records).
func (d *recordRoom) sweep(ctx context.Context, api APIClient, ids map[string]bool) error {
	removed, err := d.removeCommitted(ctx, api, "")
	if len(removed) > 0 {
		d.log.DebugContext(ctx, "removed committed images no snapshot uses", "refs", removed)
	}
	return errors.Join(err, d.sweepFiles(ctx, api, ids))
}

// isTempName reports whether a file name is one of a temporary file of
// an atomic write (internal/atomicfile: ".<name>.tmp-<random>"), a config
// drive's staging directory (".new-<random>") or a node UUID's
// (".node-uuid-<random>").
func isTempName(name string) bool {
	return strings.HasPrefix(name, ".") && (strings.Contains(name, ".tmp-") || strings.HasPrefix(name, ".new-") || strings.HasPrefix(name, ".node-uuid-"))
}

// sweepFiles removes, from the driver's part of the state directory,
// temporary files older than this Driver (a process killed in the middle
// of a write left them) and the guest files (boot data, config drive,
// resolv.conf, hosts) of instances that are not in ids and, under their lock,
// have no record.
func (d *recordRoom) sweepFiles(ctx context.Context, api APIClient, ids map[string]bool) error {
	scope := d.state.scopeDir()
	var errs []error
	// Temporary files live beside their targets: in the scope, its
	// directories, and each config drive's directory (a staging tree).
	dirs := []string{scope, d.opts.stateDir}
	for _, sub := range []string{"instances", "images", "boot", "resolv", "configdrive"} {
		dirs = append(dirs, filepath.Join(scope, sub))
	}
	if des, err := os.ReadDir(d.state.configDrives); err == nil {
		for _, de := range des {
			if de.IsDir() && !strings.HasPrefix(de.Name(), ".") {
				dirs = append(dirs, filepath.Join(d.state.configDrives, de.Name()))
			}
		}
	}
	for _, dir := range dirs {
		des, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		for _, de := range des {
			name := de.Name()
			if !isTempName(name) || dir == d.opts.stateDir && !strings.HasPrefix(name, ".node-uuid-") {
				continue
			}
			if info, err := de.Info(); err == nil && info.ModTime().Before(d.born) {
				if err := os.RemoveAll(filepath.Join(dir, name)); err != nil {
					errs = append(errs, err)
				}
			}
		}
	}
	// Guest files of instances that are gone: named by instance ID.
	stray := map[string]bool{}
	for _, dir := range []struct{ path, ext string }{
		{d.state.boot.Dir(), ".json"},
		{d.state.configDrives, ""},
		{filepath.Dir(d.vifs.resolvConfPath("x")), ".conf"},
		{filepath.Dir(d.vifs.hostsPath("x")), ".hosts"},
	} {
		des, err := os.ReadDir(dir.path)
		if err != nil {
			continue
		}
		for _, de := range des {
			id, ok := strings.CutSuffix(de.Name(), dir.ext)
			if ok && statestore.ValidKey(id) && !ids[id] {
				stray[id] = true
			}
		}
	}
	for id := range stray {
		if err := d.removeStray(ctx, api, id); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// removeStray removes the guest files of instance id if, under its lock,
// it has neither a record nor a container.
func (d *recordRoom) removeStray(ctx context.Context, api APIClient, id string) error {
	unlock, ok := d.locks.TryLock(id)
	if !ok {
		return nil
	}
	defer unlock()
	if _, ok, err := d.state.instances.Load(id); err != nil || ok {
		return err
	}
	if _, err := d.life.inspect(ctx, api, id); !isNotFound(err) {
		return err
	}
	d.log.DebugContext(ctx, "removing the files of an instance that is gone", "id", id)
	return errors.Join(d.state.removeGuest(id), d.vifs.removeNetFiles(id))
}
