package lab

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
)

// ensureNetns creates the named network namespace if it does not exist.
// It runs `ip netns add`, which first makes /run/netns a shared mount
// point: a namespace bound there before that would be bound twice once
// anyone's `ip netns add` made it one, and could never be removed.
func ensureNetns(name string) error {
	if _, err := os.Stat("/run/netns/" + name); err == nil {
		return nil
	}
	return ipNetns("add", name)
}

// deleteNetns removes the named namespace; a missing one is no error.
func deleteNetns(name string) error {
	if _, err := os.Stat("/run/netns/" + name); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return ipNetns("del", name)
}

// ipNetns runs `ip netns VERB NAME`.
func ipNetns(verb, name string) error {
	if out, err := exec.Command("ip", "netns", verb, name).CombinedOutput(); err != nil {
		return fmt.Errorf("lab: ip netns %s %s: %w: %s", verb, name, err, strings.TrimSpace(string(out)))
	}
	return nil
}
