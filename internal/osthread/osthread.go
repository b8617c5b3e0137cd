// Package osthread runs code on an OS thread of its own, locked for it,
// that is never the process's main thread: the way to switch a thread
// into another namespace (setns) without the switch being seen elsewhere.
//
// Two reasons keep such work off the main thread. /proc/self names the
// main thread (the thread group leader), so while it is switched
// /proc/self/ns/net, /proc/self/mountinfo and the like describe the other
// namespace to every goroutine of the process. And a goroutine that ends
// while still locked ends its thread with it, which is how a thread that
// could not be switched back is thrown away; the runtime cannot end the
// main thread and parks it for good instead, in the other namespace.
package osthread
