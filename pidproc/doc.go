// Package pidproc finds a daemon a program started by the PID file the
// daemon wrote, and signals and stops it safely: the process is held by a
// pidfd and checked to be the daemon (its command line holds a given
// argument) before anything is sent to it, so a PID reused by another
// process is never signalled.
//
// Linux only (pidfds); elsewhere the package has its error alone.
package pidproc
