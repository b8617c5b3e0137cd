package osimage

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/moby/moby/client"

	"github.com/dockervisor/dockervisor/image/busybox"
)

// Build makes the image described by opts on the engine, unless the
// engine has it already (then Result.Cached is true and nothing is
// built). It runs debootstrap (minbase, with systemd, systemd-sysv,
// iproute2 and iputils-ping), installs cloud-init, openssh-server and
// opts.Packages in a chroot (with the host's resolv.conf copied in for the
// time of the installation), writes the builder's configuration files and
// imports the tree into the engine with CMD ["/sbin/init"] and the
// LabelOS, LabelHash and LabelBootReport labels.
//
// Builds of one image are serialised across processes by a lock file in
// opts.CacheDir; a build that waits for another finds its image. The
// temporary root file system is removed whatever happens. Bad options
// wrap ErrInvalidOptions; a failed step wraps ErrBuild.
func Build(ctx context.Context, api Engine, opts Options) (Result, error) {
	start := time.Now()
	o, err := opts.normalized()
	if err != nil {
		return Result{}, err
	}
	res := Result{Hash: o.hash()}
	res.Ref = o.Repository + ":" + res.Hash
	if id, ok, err := lookup(ctx, api, res.Ref, res.Hash); err != nil || ok {
		res.ImageID, res.Cached, res.Duration = id, ok, time.Since(start)
		return res, err
	}
	if err := os.MkdirAll(filepath.Join(o.CacheDir, "debootstrap"), 0o755); err != nil {
		return Result{}, fmt.Errorf("%w: cache directory: %w", ErrBuild, err)
	}
	unlock, err := lockFile(ctx, filepath.Join(o.CacheDir, "osimage-"+res.Hash+".lock"))
	if err != nil {
		return Result{}, err
	}
	defer unlock()
	// Another process may have built it while this one waited.
	if id, ok, err := lookup(ctx, api, res.Ref, res.Hash); err != nil || ok {
		res.ImageID, res.Cached, res.Duration = id, ok, time.Since(start)
		return res, err
	}
	if err := build(ctx, api, o, res); err != nil {
		return Result{}, err
	}
	id, ok, err := lookup(ctx, api, res.Ref, res.Hash)
	if err != nil {
		return Result{}, err
	}
	if !ok {
		return Result{}, fmt.Errorf("%w: %s is not on the engine after its import", ErrBuild, res.Ref)
	}
	res.ImageID, res.Duration = id, time.Since(start)
	return res, nil
}

// lookup reports whether the engine has ref, made by this builder from
// the inputs with hash.
func lookup(ctx context.Context, api Engine, ref, hash string) (string, bool, error) {
	img, err := api.ImageInspect(ctx, ref)
	if err != nil {
		if isNotFound(err) {
			return "", false, nil
		}
		return "", false, fmt.Errorf("osimage: inspect %s: %w", ref, err)
	}
	if img.Config == nil || img.Config.Labels[LabelHash] != hash {
		// Not ours (or damaged): rebuild over it.
		return "", false, nil
	}
	return img.ID, true, nil
}

func isNotFound(err error) bool {
	var nf interface{ NotFound() }
	if errors.As(err, &nf) {
		return true
	}
	return strings.Contains(strings.ToLower(err.Error()), "no such image")
}

func build(ctx context.Context, api Engine, o Options, res Result) (err error) {
	work, err := os.MkdirTemp(o.WorkDir, "osimage-")
	if err != nil {
		return fmt.Errorf("%w: work directory: %w", ErrBuild, err)
	}
	defer func() {
		err = errors.Join(err, removeTree(work))
	}()
	root := filepath.Join(work, "root")
	log := o.Log
	if log == nil {
		log = io.Discard
	}

	args := []string{
		"--variant=minbase",
		"--cache-dir=" + filepath.Join(o.CacheDir, "debootstrap"),
		"--include=" + strings.Join(basePackages, ","),
		o.Suite, root, o.Mirror,
	}
	if err := run(ctx, log, "debootstrap", nil, args...); err != nil {
		return err
	}

	// apt inside the chroot resolves the mirror with the host's resolver
	// configuration; the engine provides the instance's own at run time.
	resolv := filepath.Join(root, "etc/resolv.conf")
	if err := os.Remove(resolv); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("%w: %w", ErrBuild, err)
	}
	hostResolv, err := os.ReadFile("/etc/resolv.conf")
	if err != nil {
		return fmt.Errorf("%w: host resolv.conf: %w", ErrBuild, err)
	}
	if err := os.WriteFile(resolv, hostResolv, 0o644); err != nil {
		return fmt.Errorf("%w: %w", ErrBuild, err)
	}
	env := []string{"DEBIAN_FRONTEND=noninteractive", "LC_ALL=C.UTF-8", "PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
	pkgs := append(append([]string{}, extraPackages...), o.Packages...)
	install := append([]string{root, "apt-get", "install", "-y", "--no-install-recommends"}, pkgs...)
	if err := run(ctx, log, "chroot", env, install...); err != nil {
		return err
	}
	if err := run(ctx, log, "chroot", env, root, "apt-get", "clean"); err != nil {
		return err
	}
	if err := finish(root); err != nil {
		return err
	}
	return importTree(ctx, api, root, res)
}

// finish writes the configuration files and removes what an image should
// not carry: the host's resolver configuration, apt's lists, the machine
// ID (each instance gets its own).
func finish(root string) error {
	for _, f := range configFiles {
		p := filepath.Join(root, f.Path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return fmt.Errorf("%w: %w", ErrBuild, err)
		}
		mode := f.Mode
		if mode == 0 {
			mode = 0o644
		}
		if err := os.WriteFile(p, []byte(f.Data), mode); err != nil {
			return fmt.Errorf("%w: %w", ErrBuild, err)
		}
		if err := os.Chmod(p, mode); err != nil { // the umask may have narrowed it
			return fmt.Errorf("%w: %w", ErrBuild, err)
		}
	}
	for _, l := range configLinks {
		p := filepath.Join(root, l.Path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return fmt.Errorf("%w: %w", ErrBuild, err)
		}
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("%w: %w", ErrBuild, err)
		}
		if err := os.Symlink(l.Target, p); err != nil {
			return fmt.Errorf("%w: %w", ErrBuild, err)
		}
	}
	if err := os.WriteFile(filepath.Join(root, "etc/resolv.conf"), nil, 0o644); err != nil {
		return fmt.Errorf("%w: %w", ErrBuild, err)
	}
	if err := os.WriteFile(filepath.Join(root, "etc/machine-id"), nil, 0o444); err != nil {
		return fmt.Errorf("%w: %w", ErrBuild, err)
	}
	lists := filepath.Join(root, "var/lib/apt/lists")
	entries, err := os.ReadDir(lists)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrBuild, err)
	}
	for _, e := range entries {
		if e.Type().IsRegular() && e.Name() != "lock" {
			if err := os.Remove(filepath.Join(lists, e.Name())); err != nil {
				return fmt.Errorf("%w: %w", ErrBuild, err)
			}
		}
	}
	return nil
}

// importTree streams a tar of root into the engine's import.
func importTree(ctx context.Context, api Engine, root string, res Result) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var stderr bytes.Buffer
	tar := exec.CommandContext(ctx, "tar", "--numeric-owner", "--xattrs", "--xattrs-include=*", "-C", root, "-cf", "-", ".")
	tar.Stderr = &stderr
	out, err := tar.StdoutPipe()
	if err != nil {
		return fmt.Errorf("%w: %w", ErrBuild, err)
	}
	if err := tar.Start(); err != nil {
		return fmt.Errorf("%w: tar: %w", ErrBuild, err)
	}
	repo, tag, _ := strings.Cut(res.Ref, ":")
	rc, err := api.ImageImport(ctx, client.ImageImportSource{Source: out, SourceName: "-"}, repo, client.ImageImportOptions{
		Tag: tag,
		Changes: []string{
			`CMD ["/sbin/init"]`,
			fmt.Sprintf("LABEL %s=systemd %s=%s %s=%s", LabelOS, LabelHash, res.Hash, LabelBootReport, BootReportConsole),
		},
	})
	if err == nil {
		err = busybox.DrainJSONStream(rc)
		rc.Close()
	}
	if err != nil {
		cancel()
		_ = tar.Wait()
		return fmt.Errorf("%w: import %s: %w", ErrBuild, res.Ref, err)
	}
	if err := tar.Wait(); err != nil {
		return fmt.Errorf("%w: tar: %w: %s", ErrBuild, err, strings.TrimSpace(stderr.String()))
	}
	return nil
}

// run runs name with args, its output to log and to a short tail kept for
// the error.
func run(ctx context.Context, log io.Writer, name string, env []string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	if env != nil {
		cmd.Env = env
	}
	tail := &tailBuffer{max: 2048}
	cmd.Stdout = io.MultiWriter(log, tail)
	cmd.Stderr = cmd.Stdout
	cmd.WaitDelay = 10 * time.Second
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("%w: %s: %w", ErrBuild, name, ctx.Err())
		}
		return fmt.Errorf("%w: %s %s: %w\n%s", ErrBuild, name, strings.Join(args, " "), err, tail.String())
	}
	return nil
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = append(t.b[:0], t.b[len(t.b)-t.max:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string { return string(t.b) }

// removeTree removes the work directory, first detaching any mount a
// failed debootstrap may have left under it (its /proc, /sys), so that the
// removal never reaches into a mounted file system.
func removeTree(dir string) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	// The calling thread's view: /proc/self is the main thread, which a
	// goroutine of the process may hold in another mount namespace.
	f, err := os.Open("/proc/thread-self/mounts")
	if err != nil {
		return err
	}
	var mounts []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 1 && strings.HasPrefix(fields[1], abs+"/") {
			mounts = append(mounts, fields[1])
		}
	}
	f.Close()
	for i := len(mounts) - 1; i >= 0; i-- {
		if err := syscall.Unmount(mounts[i], syscall.MNT_DETACH); err != nil {
			return fmt.Errorf("osimage: unmount %s: %w", mounts[i], err)
		}
	}
	return os.RemoveAll(abs)
}

// lockFile takes an exclusive lock on path, waiting for it as long as ctx
// allows.
func lockFile(ctx context.Context, path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("%w: lock: %w", ErrBuild, err)
	}
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("%w: lock %s: %w", ErrBuild, path, err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("osimage: waiting for another build of the image: %w", ctx.Err())
		case <-t.C:
		}
	}
}
