package nldump

import "github.com/vishvananda/netlink"

// errInterrupted is the error of a dump the kernel interrupted.
var errInterrupted error = netlink.ErrDumpInterrupted

// LinkList lists the links of h's namespace.
func LinkList(h *netlink.Handle) ([]netlink.Link, error) {
	return Retry(h.LinkList)
}

// LinkByName returns the link called name in h's namespace; a missing one
// is netlink.LinkNotFoundError.
func LinkByName(h *netlink.Handle, name string) (netlink.Link, error) {
	return Retry(func() (netlink.Link, error) { return h.LinkByName(name) })
}

// LinkByIndex returns the link with index in h's namespace.
func LinkByIndex(h *netlink.Handle, index int) (netlink.Link, error) {
	return Retry(func() (netlink.Link, error) { return h.LinkByIndex(index) })
}

// AddrList lists the addresses of link (nil: all links) of family
// (netlink.FAMILY_ALL, FAMILY_V4, FAMILY_V6).
func AddrList(h *netlink.Handle, link netlink.Link, family int) ([]netlink.Addr, error) {
	return Retry(func() ([]netlink.Addr, error) { return h.AddrList(link, family) })
}

// RouteList lists the main-table routes through link (nil: all links) of
// family.
func RouteList(h *netlink.Handle, link netlink.Link, family int) ([]netlink.Route, error) {
	return Retry(func() ([]netlink.Route, error) { return h.RouteList(link, family) })
}
