// Package brport is the part the Linux bridge drivers share: a bridge
// ensured on demand in the host namespace, and a veth whose host end is a
// port of that bridge and whose guest end is created in the instance's
// namespace at attach.
package brport
