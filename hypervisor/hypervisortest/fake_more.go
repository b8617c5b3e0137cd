package hypervisortest

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"

	"github.com/dockervisor/dockervisor/hypervisor"
	"github.com/dockervisor/dockervisor/image"
	"github.com/dockervisor/dockervisor/network"
	"github.com/dockervisor/dockervisor/stats"
)

// ConsoleOutput returns the console data written with [Fake.WriteConsole],
// bounded by opts as the contract says: chunks written before opts.Since
// are dropped, then the last opts.TailLines lines are kept, then the last
// opts.MaxBytes bytes (DefaultConsoleMaxBytes when zero).
func (f *Fake) ConsoleOutput(ctx context.Context, id string, opts hypervisor.ConsoleOptions) ([]byte, error) {
	const op = "console-output"
	if opts.TailLines < 0 || opts.MaxBytes < 0 {
		return nil, opErr(op, id, fmt.Errorf("%w: negative console bounds", hypervisor.ErrInvalidArgument))
	}
	var all []byte
	err := f.with(ctx, op, id, func(fi *fakeInstance) error {
		for _, c := range fi.console {
			if !opts.Since.IsZero() && c.t.Before(opts.Since) {
				continue
			}
			all = append(all, c.data...)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return BoundConsole(all, opts.TailLines, opts.MaxBytes), nil
}

// BoundConsole applies the TailLines and MaxBytes bounds of
// [hypervisor.ConsoleOptions] to console output b: it keeps the last
// tailLines lines (all when 0; a final line without a newline counts), then
// the last maxBytes bytes ([hypervisor.DefaultConsoleMaxBytes] when 0). It
// returns a slice of b.
func BoundConsole(b []byte, tailLines, maxBytes int) []byte {
	if tailLines > 0 {
		end := len(b)
		if end > 0 && b[end-1] == '\n' {
			end--
		}
		i := end
		for range tailLines {
			j := bytes.LastIndexByte(b[:i], '\n')
			if j < 0 {
				i = -1
				break
			}
			i = j
		}
		b = b[i+1:]
	}
	if maxBytes == 0 {
		maxBytes = hypervisor.DefaultConsoleMaxBytes
	}
	if len(b) > maxBytes {
		b = b[len(b)-maxBytes:]
	}
	return b
}

// WriteConsole appends data to the console of a running instance, stamped
// with the current time, as the instance's process would. It fails with
// ErrNotFound or ErrInvalidState like any other operation.
func (f *Fake) WriteConsole(id string, data []byte) error {
	const op = "write-console"
	return f.with(context.Background(), op, id, func(fi *fakeInstance) error {
		if err := hypervisor.CheckState(op, id, fi.inst.State, hypervisor.StateRunning); err != nil {
			return err
		}
		fi.console = append(fi.console, consoleChunk{t: f.now(), data: bytes.Clone(data)})
		return nil
	})
}

// Crash makes the process of a running or paused instance exit by itself
// with exitCode, as if the guest failed: the instance becomes crashed (an
// EventCrashed), or shut down (an EventStopped) when exitCode is 0.
func (f *Fake) Crash(id string, exitCode int) error {
	const op = "crash"
	return f.with(context.Background(), op, id, func(fi *fakeInstance) error {
		if err := hypervisor.CheckState(op, id, fi.inst.State, stHasProcess...); err != nil {
			return err
		}
		to := hypervisor.StateCrashed
		if exitCode == 0 {
			to = hypervisor.StateShutdown
		}
		f.stop(fi, to, exitCode)
		return nil
	})
}

// VIFs returns the VIFs plugged into an instance, in plug order.
func (f *Fake) VIFs(id string) ([]network.VIF, error) {
	var out []network.VIF
	err := f.with(context.Background(), "vifs", id, func(fi *fakeInstance) error {
		out = slices.Clone(fi.vifs)
		return nil
	})
	return out, err
}

func validateVIF(vif network.VIF) error {
	if err := vif.Validate(); err != nil {
		return fmt.Errorf("%w: %w", hypervisor.ErrInvalidArgument, err)
	}
	return nil
}

// plug records vif, replacing a plugged VIF with the same ID.
func (fi *fakeInstance) plug(vif network.VIF) {
	if i := slices.IndexFunc(fi.vifs, func(v network.VIF) bool { return v.ID == vif.ID }); i >= 0 {
		fi.vifs[i] = vif
		return
	}
	fi.vifs = append(fi.vifs, vif)
}

func (fi *fakeInstance) unplug(id string) {
	fi.vifs = slices.DeleteFunc(fi.vifs, func(v network.VIF) bool { return v.ID == id })
}

// PlugVIFs records vifs as plugged into the instance, in any state.
// Plugging a VIF ID again replaces it. Invalid VIFs are
// ErrInvalidArgument, and nothing is plugged then.
func (f *Fake) PlugVIFs(ctx context.Context, id string, vifs []network.VIF) error {
	const op = "plug-vifs"
	for _, v := range vifs {
		if err := validateVIF(v); err != nil {
			return opErr(op, id, err)
		}
	}
	return f.with(ctx, op, id, func(fi *fakeInstance) error {
		for _, v := range vifs {
			fi.plug(v)
		}
		return nil
	})
}

// UnplugVIFs forgets vifs. VIFs that are not plugged are ignored.
func (f *Fake) UnplugVIFs(ctx context.Context, id string, vifs []network.VIF) error {
	return f.with(ctx, "unplug-vifs", id, func(fi *fakeInstance) error {
		for _, v := range vifs {
			fi.unplug(v.ID)
		}
		return nil
	})
}

// AttachInterface plugs vif into a running instance.
func (f *Fake) AttachInterface(ctx context.Context, id string, vif network.VIF) error {
	const op = "attach-interface"
	if err := validateVIF(vif); err != nil {
		return opErr(op, id, err)
	}
	return f.with(ctx, op, id, func(fi *fakeInstance) error {
		if err := hypervisor.CheckState(op, id, fi.inst.State, hypervisor.StateRunning); err != nil {
			return err
		}
		fi.plug(vif)
		return nil
	})
}

// DetachInterface unplugs vif from an instance in any state; nil if it is
// not plugged.
func (f *Fake) DetachInterface(ctx context.Context, id string, vif network.VIF) error {
	return f.with(ctx, "detach-interface", id, func(fi *fakeInstance) error {
		fi.unplug(vif.ID)
		return nil
	})
}

// Snapshot writes a small tar archive describing the instance to the store
// given with [WithSnapshotStore], named req.Name (default
// "snapshot-<id>"), with req.Properties plus "instance_id". Without a store
// it returns an error wrapping [hypervisor.ErrNotSupported].
func (f *Fake) Snapshot(ctx context.Context, id string, req hypervisor.SnapshotRequest) (image.Metadata, error) {
	const op = "snapshot"
	if f.opts.snapshot == nil {
		if err := hypervisor.ValidateID(id); err != nil {
			return image.Metadata{}, opErr(op, id, err)
		}
		return image.Metadata{}, opErr(op, id, fmt.Errorf("%w: the fake has no snapshot store", hypervisor.ErrNotSupported))
	}
	unlock, err := f.begin(ctx, id)
	if err != nil {
		return image.Metadata{}, opErr(op, id, err)
	}
	defer unlock()

	f.mu.Lock()
	fi := f.instances[id]
	var inst hypervisor.Instance
	switch {
	case f.closed:
		err = errUnavailable()
	case fi == nil:
		err = errNotFound(id)
	default:
		err = hypervisor.CheckState(op, id, fi.inst.State, stSnapshot...)
		inst = fi.snapshotInstance()
	}
	f.mu.Unlock()
	if err != nil {
		return image.Metadata{}, opErr(op, id, err)
	}

	// The per-ID lock is held, so the instance cannot change while the
	// store is written.
	archive, err := snapshotTar(inst)
	if err != nil {
		return image.Metadata{}, opErr(op, id, err)
	}
	meta := image.Metadata{
		Name:            req.Name,
		ContainerFormat: image.ContainerFormatDocker,
		DiskFormat:      image.DiskFormatRaw,
		Properties:      maps.Clone(req.Properties),
	}
	if meta.Name == "" {
		meta.Name = "snapshot-" + id
	}
	if meta.Properties == nil {
		meta.Properties = make(map[string]string)
	}
	meta.Properties["instance_id"] = id
	stored, err := f.opts.snapshot.Create(ctx, meta, bytes.NewReader(archive))
	if err != nil {
		return image.Metadata{}, opErr(op, id, fmt.Errorf("store snapshot: %w", err))
	}
	return stored, nil
}

func snapshotTar(inst hypervisor.Instance) ([]byte, error) {
	desc, err := json.Marshal(inst)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "instance.json", Mode: 0o644, Size: int64(len(desc))}); err != nil {
		return nil, err
	}
	if _, err := tw.Write(desc); err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// HostResources reports the simulated host: the totals given with
// [WithHost]; the vCPUs and memory limits of every instance (in any state)
// as used and claimed; and the simulated memory use of running and paused
// instances.
func (f *Fake) HostResources(ctx context.Context) (stats.Host, error) {
	const op = "host-resources"
	if err := ctx.Err(); err != nil {
		return stats.Host{}, opErr(op, "", err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return stats.Host{}, opErr(op, "", errUnavailable())
	}
	now := f.now()
	h := stats.Host{
		Time:              now,
		Hostname:          f.opts.hostname,
		HypervisorType:    FakeHypervisorType,
		HypervisorVersion: "1.0.0",
		APIVersion:        "1.0",
		VCPUs:             f.opts.vcpus,
		MemoryMB:          f.opts.memoryMB,
		DiskGB:            f.opts.diskGB,
		DiskUsedGB:        1,
		Uptime:            now.Sub(f.created),
		Instances:         make(map[string]int),
	}
	var usedBytes uint64
	running := 0
	for _, fi := range f.instances {
		h.VCPUsUsed += fi.inst.VCPUs
		h.MemoryClaimedMB += fi.inst.MemoryMB
		h.Instances[fi.inst.State.String()]++
		used, _ := f.memory(fi)
		usedBytes += used
		if fi.inst.State == hypervisor.StateRunning {
			running += fi.inst.VCPUs
		}
	}
	h.MemoryUsedMB = min(int64(usedBytes>>20), h.MemoryMB)
	h.MemoryFreeMB = h.MemoryMB - h.MemoryUsedMB
	h.CPUUtilization = min(100, 100*float64(running)/float64(h.VCPUs))
	load := float64(running)
	h.LoadAverage = [3]float64{load, load, load}
	return h, nil
}

// AvailableNodes returns the simulated host's name.
func (f *Fake) AvailableNodes(ctx context.Context) ([]string, error) {
	const op = "available-nodes"
	if err := ctx.Err(); err != nil {
		return nil, opErr(op, "", err)
	}
	if f.isClosed() {
		return nil, opErr(op, "", errUnavailable())
	}
	return []string{f.opts.hostname}, nil
}

// InstanceStats samples an instance's simulated usage: CPU time and memory
// as Info reports them, and one interface per plugged VIF while the
// instance has a process.
func (f *Fake) InstanceStats(ctx context.Context, id string) (stats.Instance, error) {
	var s stats.Instance
	err := f.with(ctx, "instance-stats", id, func(fi *fakeInstance) error {
		s.ID = id
		s.Time = f.now()
		s.CPUTime = f.cpuTime(fi)
		if fi.inst.State == hypervisor.StateRunning {
			s.CPUPercent = 100
		}
		s.MemoryBytes, s.MemoryLimitBytes = f.memory(fi)
		if slices.Contains(stHasProcess, fi.inst.State) {
			for i, v := range fi.vifs {
				s.Interfaces = append(s.Interfaces, stats.Interface{PortID: v.ID, Device: fmt.Sprintf("eth%d", i)})
			}
		}
		return nil
	})
	return s, err
}
