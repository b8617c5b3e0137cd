package docker

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"sync"
)

// opOwner names the process and Driver that run an operation, so that a
// record's pending mark tells an operation still running (in another
// process sharing the state directory, or in another open Driver of this
// process) from one whose process died.
type opOwner struct {
	PID int `json:"pid"`
	// Start is the process's start time, in the kernel's ticks since boot
	// (zero where the system does not say): a PID reused by another
	// process has another.
	Start uint64 `json:"start,omitempty"`
	// Boot is the kernel's boot ID: a process of an earlier boot is dead.
	Boot string `json:"boot,omitempty"`
	// Driver is the Driver's random token within its process.
	Driver string `json:"driver"`
}

// liveDrivers holds the tokens of this process's open Drivers.
var liveDrivers sync.Map

// newOwner returns the owner of the operations of a new Driver and
// registers it as live until Close.
func newOwner() opOwner {
	var b [8]byte
	_, _ = rand.Read(b[:])
	start, boot := processStart(os.Getpid())
	o := opOwner{PID: os.Getpid(), Start: start, Boot: boot, Driver: hex.EncodeToString(b[:])}
	liveDrivers.Store(o.Driver, true)
	return o
}

// alive reports whether the owner's process, and in it the owner's
// Driver, still runs.
func (o opOwner) alive() bool {
	self := os.Getpid()
	start, boot := processStart(self)
	if o.Boot != "" && boot != "" && o.Boot != boot {
		return false
	}
	if o.PID == self && o.Start == start {
		_, ok := liveDrivers.Load(o.Driver)
		return ok
	}
	if o.PID <= 0 {
		return false
	}
	s, _ := processStart(o.PID)
	if s == 0 {
		return false // no such process (or the system cannot say)
	}
	return o.Start == 0 || s == o.Start
}

// ownerGone reports whether an intent journal of owner o is stale: its
// owner is dead, or it is this Driver, which leaves a journal only when an
// operation failed and could not roll back (the caller holds the
// instance's lock, so no operation of this Driver runs on it).
func (d *recordRoom) ownerGone(o opOwner) bool {
	return o == d.owner || !o.alive()
}
