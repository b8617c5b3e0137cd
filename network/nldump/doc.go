// Package nldump is the one place where this module reads rtnetlink
// tables: links, addresses, routes, through a *netlink.Handle (package
// github.com/vishvananda/netlink) bound to a namespace. The kernel
// interrupts a dump when the table changes while it is read, and
// netlink then returns netlink.ErrDumpInterrupted with results that may be
// inconsistent; every function here retries such a dump, up to [Retries]
// times in all.
//
// A test of the repository (internal/repotest) fails on a call of
// netlink's dump functions (LinkList, LinkByName, LinkByIndex, AddrList,
// RouteList, ...) anywhere else, so that no caller forgets the retry.
//
// Linux only; elsewhere the package has [Retry] alone.
package nldump
