package lab

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/dockervisor/dockervisor/network/ovs/ovsrun"
)

// A lab with Open vSwitch networks runs a private Open vSwitch (package
// ovsrun), detached, so that it outlives the process that brought the lab
// up: ovsdb-server and ovs-vswitchd with a run directory of their own,
// ovs-vswitchd inside the lab's namespace, where the userspace datapath
// opens the port devices. Each ovs network is a bridge of that switch.
// Down deletes the bridges, stops both daemons and removes the run
// directory.

// ovsRunDir returns the run directory of lab's switch: short, because
// unix socket paths are limited to 107 bytes, and unique per state
// directory and lab.
func ovsRunDir(stateDir, lab string) string {
	abs, err := filepath.Abs(stateDir)
	if err != nil {
		abs = stateDir
	}
	return filepath.Join("/run/dvctl", hash(abs, lab)[:16])
}

// ovsRunning reports whether the switch in dir runs.
func ovsRunning(ctx context.Context, dir string) bool {
	sw, err := ovsrun.Open(dir)
	return err == nil && sw.Running(ctx)
}

// ensureOVS starts the lab's switch in dir, with ovs-vswitchd in the
// namespace nsName, unless it is running; then it ensures the bridges.
func ensureOVS(ctx context.Context, dir, nsName string, bridges []string) (*ovsrun.Switch, error) {
	if !ovsRunning(ctx, dir) {
		if err := stopOVS(ctx, dir); err != nil { // leftovers of a crash
			return nil, err
		}
		if err := os.MkdirAll(filepath.Dir(dir), 0o700); err != nil {
			return nil, err
		}
		dp, _ := ovsrun.PickDatapath(ctx) // the kernel datapath where there is one
		if _, err := ovsrun.Start(ctx, ovsrun.Options{Dir: dir, NetNS: nsName, Detach: true, Datapath: dp}); err != nil {
			return nil, err
		}
	}
	sw, err := ovsrun.Open(dir)
	if err != nil {
		return nil, err
	}
	for _, br := range bridges {
		if err := sw.AddBridge(ctx, br); err != nil {
			return nil, err
		}
	}
	return sw, nil
}

// stopOVS stops the switch in dir, deleting its bridges, and removes dir.
// A switch that is not there is no error.
func stopOVS(ctx context.Context, dir string) error {
	sw, err := ovsrun.Open(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		// No switch (or one that never got as far as its first file).
		if err := os.RemoveAll(dir); err != nil {
			return err
		}
	case err != nil:
		return err
	default:
		if err := sw.Stop(ctx); err != nil {
			return err
		}
	}
	_ = os.Remove(filepath.Dir(dir)) // /run/dvctl, when no other lab has a switch
	return nil
}

// ovsDB returns the database of the switch in dir, for ovs.WithDB.
func ovsDB(dir string) (string, error) {
	sw, err := ovsrun.Open(dir)
	if err != nil {
		return "", err
	}
	return sw.DB, nil
}
