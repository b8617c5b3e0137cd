// Package floatingip binds floating IPv4 addresses to instances' fixed
// IPs with 1:1 NAT, as nova-network does: the floating address goes on the
// host's public interface, traffic to it is destination-NATed to the fixed
// IP (on the prerouting hook, and on the output hook for the host's own
// clients), and traffic from the fixed IP that leaves through the public
// interface is source-NATed to the floating address, so an instance's own
// connections leave from its floating IP.
//
// # Kernel state
//
// Everything lives in one nf_tables table, "ip dockervisor-fip", with two
// maps (floating→fixed, fixed→floating) that the NAT rules look up; a bind
// or unbind changes both maps in one kernel transaction. The maps are the
// durable record: [Binder.List] reads them from the kernel, so a restarted
// agent sees the bindings it made. The table goes with the last binding.
// The host must forward IPv4 (net.ipv4.ip_forward=1) and route the fixed
// network; that is the network driver's job, not this package's.
//
// # Host namespace
//
// [WithHostNetNS] puts everything in another network namespace than the
// process's own: tests use a private one.
//
// # Idempotency and errors
//
// Binding a floating IP to the fixed IP it is bound to changes nothing;
// unbinding a floating IP that is not bound succeeds. Binding a floating IP
// bound to another fixed IP, or a fixed IP that has another floating IP,
// is [ErrAlreadyBound]; a malformed or non-IPv4 address [ErrInvalidAddress];
// a public interface that does not exist [ErrNoInterface]. A failed Bind
// removes the address it added.
//
// # Concurrency
//
// A Binder is safe for concurrent use: one lock, host-wide and separate
// from any per-instance lock, serialises its changes.
package floatingip
