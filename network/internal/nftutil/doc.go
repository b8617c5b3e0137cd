// Package nftutil holds the nf_tables helpers of the host-wide network
// services (security groups, floating IPs): a google/nftables connection
// bound to a network namespace, the expression builders they share (the
// physdev match of bridged packets, address and port matches, verdicts),
// idempotent table deletion and the kernel's ruleset generation.
//
// Every change a service makes goes into one netlink batch, which the kernel
// commits as one transaction: it applies entirely or not at all, and a
// packet sees the ruleset either before or after it.
package nftutil
