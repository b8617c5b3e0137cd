package linkutil

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"slices"
	"strconv"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/dockervisor/dockervisor/network"
)

// OwnedLink returns the link called name if its interface alias is one of
// marks, and (nil, nil) if there is no link of that name. A link of that
// name with another alias, or none, belongs to someone else: the error
// wraps [network.ErrDeviceConflict] and the link is left as it is.
func (n *NS) OwnedLink(name string, marks ...string) (netlink.Link, error) {
	l, err := n.Link(name)
	if err != nil || l == nil {
		return nil, err
	}
	if !slices.Contains(marks, l.Attrs().Alias) {
		return nil, conflict(l)
	}
	return l, nil
}

// conflict is the error for a device that is not ours.
func conflict(l netlink.Link) error {
	who := "no owner mark"
	if a := l.Attrs().Alias; a != "" {
		who = fmt.Sprintf("alias %q", a)
	}
	return fmt.Errorf("%w: %s exists (a %s, %s) and was not created for this VIF", network.ErrDeviceConflict, l.Attrs().Name, l.Type(), who)
}

// DeleteOwned deletes the link called name if its interface alias is one
// of marks, and reports whether it did. A missing link, and a link that
// carries another alias or none, are left alone: (false, nil). The link is
// deleted by the index it was read with, so a device that replaced it
// under the same name in between is not touched.
func (n *NS) DeleteOwned(name string, marks ...string) (bool, error) {
	l, err := n.Link(name)
	if err != nil || l == nil || !slices.Contains(marks, l.Attrs().Alias) {
		return false, err
	}
	if err := n.DeleteByIndex(l); err != nil {
		return false, err
	}
	return true, nil
}

// DeleteByIndex deletes l by its index. A link that is gone is success.
func (n *NS) DeleteByIndex(l netlink.Link) error {
	if err := n.h.LinkDel(l); err != nil && !IsNotFound(err) {
		return fmt.Errorf("linkutil: delete %s in %s: %w", l.Attrs().Name, n.path, err)
	}
	return nil
}

// TempName returns a device name for a device that gets its final name
// only once it carries its owner mark: "dvt", the calling process's PID in
// base 36, "x" and 6 random hex digits (at most 15 characters). The PID
// lets [NS.SweepTemps] tell the temporary device of a process that died
// between the creation and the rename (a killed agent) from one in flight.
func TempName() string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return tempPrefix + strconv.FormatInt(int64(os.Getpid()), 36) + "x" + hex.EncodeToString(b)
}

const tempPrefix = "dvt"

// tempName matches the names TempName returns; its group is the PID.
var tempName = regexp.MustCompile(`^` + tempPrefix + `([0-9a-z]{1,5})x[0-9a-f]{6}$`)

// tempOwner returns the PID in a name TempName made.
func tempOwner(name string) (int, bool) {
	m := tempName.FindStringSubmatch(name)
	if m == nil {
		return 0, false
	}
	pid, err := strconv.ParseInt(m[1], 36, 32)
	return int(pid), err == nil && pid > 0
}

// SweepTemps deletes the temporary devices ([TempName]) in n whose
// creating process no longer exists: a process killed between a device's
// creation and its rename leaves one, with no owner mark yet. A device of
// a live process is in flight and left alone. It returns the names it
// deleted. The drivers call it as they plug and unplug.
func (n *NS) SweepTemps() ([]string, error) {
	links, err := n.LinkList()
	if err != nil {
		return nil, err
	}
	var gone []string
	var errs []error
	for _, l := range links {
		pid, ok := tempOwner(l.Attrs().Name)
		if !ok || l.Attrs().Alias != "" || processAlive(pid) {
			continue
		}
		if err := n.DeleteByIndex(l); err != nil {
			errs = append(errs, err)
			continue
		}
		gone = append(gone, l.Attrs().Name)
	}
	return gone, errors.Join(errs...)
}

// SweepTempsLogged is SweepTemps for the drivers' plug and unplug paths:
// what it deletes is logged at Info and what it cannot at Warn, on log,
// and neither fails the caller.
func (n *NS) SweepTempsLogged(ctx context.Context, log *slog.Logger) {
	gone, err := n.SweepTemps()
	if len(gone) > 0 {
		log.InfoContext(ctx, "deleted temporary devices of dead processes", "netns", n.path, "devices", gone)
	}
	if err != nil {
		log.WarnContext(ctx, "temporary devices of dead processes left", "netns", n.path, "err", err)
	}
}

// processAlive reports whether process pid exists (in this PID
// namespace). A process of another user counts as alive.
func processAlive(pid int) bool {
	err := unix.Kill(pid, 0)
	return err == nil || errors.Is(err, unix.EPERM)
}
