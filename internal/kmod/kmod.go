// Package kmod tells whether the running kernel has a feature that Debian
// and most distributions build as a loadable module (8021q, openvswitch,
// br_netfilter…), and loads one with modprobe, as a distribution's service
// would (ovs-ctl loads openvswitch before it starts ovs-vswitchd).
//
// A module is present when it is loaded, built in (modules.builtin), or
// installed for the running kernel (modules.dep), where modprobe, or the
// kernel itself on first use, can load it. This project's CI kernel is
// built without modules and without these features: every query answers
// false there.
package kmod

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// root is the file system root the module files are looked up under;
// tests point it elsewhere.
var root = "/"

// Loaded reports whether module name is loaded (or built in with a
// /sys/module entry).
func Loaded(name string) bool {
	_, err := os.Stat(filepath.Join(root, "sys/module", canonical(name)))
	return err == nil
}

// Present reports whether the running kernel has module name: loaded,
// built in, or installed as a loadable module for this kernel.
func Present(name string) bool {
	if Loaded(name) {
		return true
	}
	rel, err := release()
	if err != nil {
		return false
	}
	dir := filepath.Join(root, "lib/modules", rel)
	return listed(filepath.Join(dir, "modules.builtin"), name, false) || listed(filepath.Join(dir, "modules.dep"), name, true)
}

// Load loads module name with modprobe unless it is loaded already. It
// returns an error naming the module when it cannot.
func Load(ctx context.Context, name string) error {
	if Loaded(name) {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "modprobe", name).CombinedOutput()
	if err != nil {
		return fmt.Errorf("kmod: modprobe %s: %w: %s", name, err, bytes.TrimSpace(out))
	}
	if !Loaded(name) {
		return fmt.Errorf("kmod: modprobe %s succeeded but /sys/module/%s does not exist", name, canonical(name))
	}
	return nil
}

// canonical is the kernel's name of a module: dashes are underscores.
func canonical(name string) string { return strings.ReplaceAll(name, "-", "_") }

// listed reports whether file (modules.builtin or modules.dep) lists
// module name: a path ending in /name.ko, optionally compressed, followed
// by ":" in modules.dep.
func listed(file, name string, dep bool) bool {
	f, err := os.Open(file)
	if err != nil {
		return false
	}
	defer f.Close()
	want := canonical(name)
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if dep {
			var ok bool
			if line, _, ok = strings.Cut(line, ":"); !ok {
				continue
			}
		}
		base := filepath.Base(line)
		if i := strings.Index(base, ".ko"); i > 0 && canonical(base[:i]) == want {
			return true
		}
	}
	return false
}
