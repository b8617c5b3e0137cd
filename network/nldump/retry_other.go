//go:build !linux

package nldump

// errInterrupted: no netlink, no interrupted dumps.
var errInterrupted error
