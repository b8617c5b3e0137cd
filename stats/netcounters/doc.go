// Package netcounters reads the counters of every network interface inside
// an instance's network namespace over route netlink (Linux only; on other
// systems the package is empty). A namespace that no longer exists gives an
// error wrapping [network.ErrNamespaceGone].
package netcounters
