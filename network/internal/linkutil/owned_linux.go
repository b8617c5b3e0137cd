package linkutil

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"slices"

	"github.com/vishvananda/netlink"

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

// TempName returns a random device name ("dvtmp" and 10 hex digits), for
// a device that gets its final name only once it carries its owner mark.
func TempName() string {
	b := make([]byte, 5)
	_, _ = rand.Read(b)
	return "dvtmp" + hex.EncodeToString(b)
}
