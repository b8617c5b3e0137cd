package docker

import (
	"time"

	"github.com/moby/moby/api/types/container"

	"github.com/dockervisor/dockervisor/hypervisor"
)

// Operations with more than one step keep an intent journal in the
// instance's record: the pending mark, written (atomically, with the rest
// of the record) before the operation's first change and cleared by the
// record write that ends it, whether the operation succeeded or failed and
// rolled back. The mark names the operation, its owner (process and
// Driver) and the record from before it, and what the operation made that
// the engine alone cannot tell (the name of a set-aside container, the
// reference of a committed image, whether a snapshot paused the instance).
// A mark whose owner is gone was left by an agent that died in the middle
// of the operation; recover.go finishes or undoes it.

// Values of pendingOp.Op, as the operations call themselves.
const (
	pendSpawn          = "spawn"
	pendPowerOff       = "power-off"
	pendSoftDelete     = "soft-delete"
	pendStopUnknown    = "reconcile-stop" // Reconcile's stop policy
	pendPowerOn        = "power-on"
	pendRestore        = "restore"
	pendReboot         = "reboot"
	pendResume         = "resume"
	pendRebuild        = "rebuild"
	pendSnapshot       = "snapshot"
	pendResize         = "resize"
	pendPlugVIFs       = "plug-vifs"
	pendUnplugVIFs     = "unplug-vifs"
	pendUpdateMetadata = "update-metadata"
	pendDestroy        = "destroy"
)

// pendingOp is the intent journal of one operation; see above.
type pendingOp struct {
	Op    string    `json:"op"`
	Owner opOwner   `json:"owner"`
	Since time.Time `json:"since"`
	// Prev is the instance's record before the operation (without a
	// pending mark).
	Prev *instanceRecord `json:"prev,omitempty"`
	// StartedAt is when the instance's process had started, on the
	// engine's clock, when the operation began: a process started since
	// is the operation's.
	StartedAt time.Time `json:"started_at,omitzero"`
	// Running says the instance's process ran when the operation began.
	Running bool `json:"running,omitempty"`
	// Sent names an engine request that may be in flight when the
	// process dies ("create", "commit", sentUpdate), written just before
	// it is sent: the engine goes on serving a request whose client died,
	// and
	// neither request takes a lock that a later call would wait for, so
	// recovery waits for what it makes (see awaitInFlight).
	Sent   string    `json:"sent,omitempty"`
	SentAt time.Time `json:"sent_at,omitzero"`

	// Container is the engine ID of the instance's container when the
	// operation began (the one a rebuild replaces, the one a snapshot
	// commits).
	Container string `json:"container,omitempty"`
	// Paused says a snapshot pauses the instance (it ran); CommitRef is
	// the reference of the image it commits, StoreImage the ID of the
	// store image it creates.
	Paused     bool   `json:"paused,omitempty"`
	CommitRef  string `json:"commit_ref,omitempty"`
	StoreImage string `json:"store_image,omitempty"`
	// OldLimits and NewLimits are a resize's engine limits before and
	// after, Flavor the flavor it records.
	OldLimits *limits            `json:"old_limits,omitempty"`
	NewLimits *limits            `json:"new_limits,omitempty"`
	Flavor    *hypervisor.Flavor `json:"flavor,omitempty"`
	// VIFs are the port IDs an unplug removes.
	VIFs []string `json:"vifs,omitempty"`
}

// limits are the engine limits a resize changes.
type limits struct {
	CPUShares  int64 `json:"cpu_shares,omitempty"`
	NanoCPUs   int64 `json:"nano_cpus,omitempty"`
	Memory     int64 `json:"memory,omitempty"`
	MemorySwap int64 `json:"memory_swap,omitempty"`
}

func limitsOf(r container.Resources) *limits {
	return &limits{CPUShares: r.CPUShares, NanoCPUs: r.NanoCPUs, Memory: r.Memory, MemorySwap: r.MemorySwap}
}

func (l limits) resources() container.Resources {
	return container.Resources{CPUShares: l.CPUShares, NanoCPUs: l.NanoCPUs, Memory: l.Memory, MemorySwap: l.MemorySwap}
}

// beginOp opens the intent journal of operation op on t: the next record
// write of t (see save) carries it. The record from before is t.rec.
func (d *recordRoom) beginOp(t *target, op string) *pendingOp {
	prev := t.rec
	p := &pendingOp{Op: op, Owner: d.owner, Since: time.Now(), Prev: &prev, Container: t.cid}
	if t.c.State != nil {
		p.StartedAt = parseTime(t.c.State.StartedAt)
		p.Running = hasProcess(t.c.State.Status)
	}
	t.pending = p
	return p
}

// endOp closes t's journal: the record is written once more without it,
// if it was written with it. The operation is over, done or rolled back.
func (d *recordRoom) endOp(t *target) error {
	if t.pending == nil {
		return nil
	}
	written := t.written == t.pending
	t.pending = nil
	if !written {
		return nil
	}
	return d.save(t, t.rec)
}

// save writes rec as instance t's record, with t's journal if one is
// open, and makes it t.rec.
func (d *recordRoom) save(t *target, rec instanceRecord) error {
	rec.Pending = t.pending
	if err := d.state.save(t.id, rec); err != nil {
		return err
	}
	rec.Pending = nil
	t.rec = rec
	t.written = t.pending
	t.saved = true
	return nil
}

// sentUpdate is the Sent of a resize's limits update.
const sentUpdate = "update"

// markSent notes in t's journal that engine request req is about to be
// sent (see pendingOp.Sent).
func (d *recordRoom) markSent(t *target, req string) error {
	if t.pending == nil {
		return nil
	}
	t.pending.Sent, t.pending.SentAt = req, time.Now()
	return d.save(t, t.rec)
}
