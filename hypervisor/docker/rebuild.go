package docker

import (
	"context"
	"fmt"
	"strings"

	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/client"

	"github.com/dockervisor/dockervisor/hypervisor"
	"github.com/dockervisor/dockervisor/internal/undo"
)

// The steps of Rebuild, in order, after validate and ensure-image (the
// Spawn steps of the same names). Each registers its undo before it runs.
const (
	StepRebuildStop    = "rebuild-stop"
	StepRebuildSetOld  = "rebuild-set-aside"
	StepRebuildRemove  = "rebuild-remove-old"
	rebuildAsideSuffix = "-rebuild-old"
)

// Rebuild gives the instance a fresh file system from imageRef (a store
// image ID with an image store, such as a snapshot's; otherwise an engine
// reference): the instance keeps its ID, name, limits, command,
// environment, labels, metadata and its durable record (power intent,
// VIFs), and gets a new container. An OS instance stays one; an
// application instance becomes one when the new image is an OS image. Steps: validate, ensure-image, stop the
// old container if it runs, set it aside under another name, create the
// new container (the create path of Spawn), start it through the one start
// path (so every post-start step, such as attaching VIFs, runs), and
// remove the old container. A running instance runs again; a stopped one
// is started and stopped again, as Nova's rebuild does, and is left shut
// down.
//
// Valid when the instance is running, shut down, crashed or created
// (ErrInvalidState otherwise). A missing image is ErrImageNotFound. A
// failure undoes the steps done in reverse order: the new container goes,
// the old one gets its name back and runs again if it ran. The record's
// intent journal lets a new Driver undo the same way a rebuild whose
// process died before the new container was complete (see recover.go).
func (d *lifecycleRoom) Rebuild(ctx context.Context, id, imageRef string) error {
	return opErr("rebuild", id, d.rebuild(ctx, id, imageRef))
}

func (d *lifecycleRoom) rebuild(ctx context.Context, id, imageRef string) error {
	d.step(StepValidate)
	if strings.TrimSpace(imageRef) == "" {
		if err := hypervisor.ValidateID(id); err != nil {
			return err
		}
		return fmt.Errorf("%w: empty image", hypervisor.ErrInvalidArgument)
	}
	t, unlock, err := d.lockCurrent(ctx, id)
	if err != nil {
		return err
	}
	defer unlock()
	if _, err := hypervisor.OpRebuild.Check(id, t.cur); err != nil {
		return err
	}
	old, _ := d.specFromLabels(t.c.Config.Labels)
	spec := rebuildSpec(old, imageRef)
	if f := t.rec.Flavor; f != nil {
		// The limits of the last Resize, not the spawn-time ones.
		spec.VCPUs, spec.HardCPULimit, spec.MemoryMB = f.EffectiveVCPUs(), f.HardCPULimit, f.MemoryMB
	}
	if err := spec.Validate(); err != nil {
		return err
	}

	d.step(StepEnsureImage)
	engineImage, inspected, err := d.images.ensureImageInspected(ctx, t.api, imageRef)
	if err != nil {
		return err
	}

	// The journal names the old container before anything changes, so
	// that a new Driver undoes a rebuild whose process died (recover.go):
	// the old container gets its name back and runs again if it ran.
	prevRec := t.rec
	wasRunning := t.cur == hypervisor.StateRunning
	p := d.records.beginOp(t, pendRebuild)
	if err := d.records.save(t, t.rec); err != nil {
		return err
	}
	u := undo.Stack{StepTimeout: d.cleanupTimeout, Log: d.log, Op: "rebuild", ID: id}
	defer func() {
		if u.Rollback(ctx) != nil { // logged by the stack
			return // the journal stays: the next call finishes the undo
		}
		if t.pending != nil {
			if err := d.records.endOp(t); err != nil {
				d.log.WarnContext(ctx, "rebuild: the journal stays in the record; the next call clears it", "op", "rebuild", "id", id, "err", err)
			}
		}
	}()

	d.step(StepRebuildStop)
	if wasRunning {
		u.Push(func(ctx context.Context) error {
			// The old container runs again, through the one start path.
			t.cur = hypervisor.StateShutdown
			_, err := d.startInstance(ctx, t, prevRec)
			return err
		})
		if err := d.stopInstance(ctx, t, t.rec, stopRequest{}); err != nil {
			return err
		}
	}

	d.step(StepRebuildSetOld)
	name, aside := d.containerName(id), d.containerName(id)+rebuildAsideSuffix
	u.Push(func(ctx context.Context) error {
		_, err := t.api.ContainerRename(ctx, t.cid, client.ContainerRenameOptions{NewName: name})
		return classify(err, hypervisor.ErrNotFound)
	})
	if _, err := t.api.ContainerRename(ctx, t.cid, client.ContainerRenameOptions{NewName: aside}); err != nil {
		return fmt.Errorf("set the old container aside: %w", classify(err, hypervisor.ErrNotFound))
	}

	d.step(StepCreate)
	cs := newContainerSpec(spec, engineImage)
	if cs.os, cs.imageID, err = d.osInst.rebuildBoot(ctx, t.api, old, spec, engineImage, inspected); err != nil {
		return err
	}
	if cs.mounts, err = d.keptMounts(id); err != nil {
		return err
	}
	cs.sysctls = d.vifs.netSysctls()
	cs.sending = func() error { return d.records.markSent(t, "create") }
	cid, err := d.createContainer(ctx, t.api, cs, &u)
	if err != nil {
		return err
	}

	nt := &target{id: id, api: t.api, cid: cid, cur: hypervisor.StateCreated, rec: t.rec, saved: true, pending: p, written: t.written}
	want := t.rec
	want.SoftDeleted = false
	if _, err := d.startInstance(ctx, nt, want); err != nil {
		return err
	}
	if !wasRunning {
		// Left as it was: stopped, by the driver.
		nt.cur = hypervisor.StateRunning
		if err := d.stopInstance(ctx, nt, nt.rec, stopRequest{Kill: true}); err != nil {
			return err
		}
	}
	// The new container is complete: the journal goes with the old
	// container's undo, and only the old container, set aside, is left to
	// remove (Reconcile and Destroy remove it if this process dies now).
	if err := d.records.endOp(nt); err != nil {
		return err
	}
	t.pending = nil
	u.Release()

	d.step(StepRebuildRemove)
	d.intents.record(t.cid)
	rctx, cancel := d.cleanupContext(ctx)
	defer cancel()
	if err := d.records.removeContainer(rctx, t.api, t.cid); err != nil {
		// The instance is rebuilt; the old container, under its other
		// name, is removed by Reconcile's remove policy or Destroy.
		d.log.WarnContext(ctx, "rebuild left the old container behind", "op", "rebuild", "id", id, "container", t.cid, "err", err)
	}
	if d.opts.images != nil && old.EngineImage != old.Image && old.EngineImage != engineImage {
		d.images.removeUntaggedImage(rctx, t.api, t.c.Image)
	}
	d.log.DebugContext(ctx, "rebuilt", "id", id, "image", imageRef, "container", cid)
	return nil
}

// keptMounts returns the mounts of the files the instance keeps across a
// rebuild: its config drive (as it is now, with the current metadata and
// VIFs), its hosts file (written if an older version of the Driver
// spawned it without one) and, with a VIF driver, its resolv.conf.
func (d *lifecycleRoom) keptMounts(id string) ([]mount.Mount, error) {
	if err := d.vifs.writeHosts(id, true); err != nil {
		return nil, err
	}
	ms := []mount.Mount{d.vifs.hostsMount(id)}
	if d.state.hasConfigDrive(id) {
		m, err := d.guest.configDriveMount(id)
		if err != nil {
			return nil, err
		}
		ms = append(ms, m)
	}
	if d.opts.vifs != nil {
		ms = append(ms, d.vifs.resolvConfMount(id))
	}
	return ms, nil
}

// rebuildSpec is the spec of the container Rebuild creates: the spawn-time
// spec kept in the old container's labels, with imageRef. What it does
// not carry (the boot data, the VIFs) is kept elsewhere; a test lists it,
// so a new InstanceSpec field is carried or listed there.
func rebuildSpec(old storedSpec, imageRef string) hypervisor.InstanceSpec {
	spec := old.instanceSpec()
	spec.Image = imageRef
	return spec
}
