package hypervisor

import "slices"

// Operation names a state-changing operation of the state table in the
// package documentation.
type Operation int

// The operations of the state table. Spawn (valid when no instance has the
// ID) and Destroy (valid in every state) have no row.
const (
	OpPowerOff Operation = iota + 1
	OpPowerOn
	OpPause
	OpUnpause
	OpRebootSoft
	OpRebootHard
	OpSoftDelete
	OpRestore
	OpSnapshot
	OpExec
	OpAttachConsole
	OpRebuild
)

// Transition is one row of the state table: the states in which an
// operation acts, the states in which it does nothing and returns nil, and
// the state it leads to.
type Transition struct {
	Op    Operation
	Valid []State // the operation acts in these states
	Noop  []State // the operation returns nil and changes nothing
	// To is the state a valid call leads to; StateUnknown when the state
	// does not change (Snapshot, Rebuild, Exec, AttachConsole).
	To State
}

var (
	stopped    = []State{StateShutdown, StateCrashed, StateCreated}
	hasProcess = []State{StateRunning, StatePaused}
	notDeleted = []State{StateRunning, StatePaused, StateShutdown, StateCrashed, StateCreated}
)

// stateTable is the table of the package documentation, as data.
var stateTable = [...]Transition{
	OpPowerOff:   {Op: OpPowerOff, Valid: hasProcess, Noop: stopped, To: StateShutdown},
	OpPowerOn:    {Op: OpPowerOn, Valid: stopped, Noop: []State{StateRunning}, To: StateRunning},
	OpPause:      {Op: OpPause, Valid: []State{StateRunning}, Noop: []State{StatePaused}, To: StatePaused},
	OpUnpause:    {Op: OpUnpause, Valid: []State{StatePaused}, Noop: []State{StateRunning}, To: StateRunning},
	OpRebootSoft: {Op: OpRebootSoft, Valid: []State{StateRunning}, To: StateRunning},
	OpRebootHard: {Op: OpRebootHard, Valid: notDeleted, To: StateRunning},
	OpSoftDelete: {Op: OpSoftDelete, Valid: notDeleted, Noop: []State{StateSoftDeleted}, To: StateSoftDeleted},
	OpRestore:    {Op: OpRestore, Valid: []State{StateSoftDeleted}, To: StateRunning},
	OpSnapshot:   {Op: OpSnapshot, Valid: []State{StateRunning, StatePaused, StateShutdown, StateCrashed}},
	OpRebuild:    {Op: OpRebuild, Valid: []State{StateRunning, StateShutdown, StateCrashed, StateCreated}},
	// Guest access reaches into a running process and changes no state.
	OpExec:          {Op: OpExec, Valid: []State{StateRunning}},
	OpAttachConsole: {Op: OpAttachConsole, Valid: []State{StateRunning}},
}

var opNames = [...]string{
	OpPowerOff:      "power-off",
	OpPowerOn:       "power-on",
	OpPause:         "pause",
	OpUnpause:       "unpause",
	OpRebootSoft:    "reboot",
	OpRebootHard:    "reboot",
	OpSoftDelete:    "soft-delete",
	OpRestore:       "restore",
	OpSnapshot:      "snapshot",
	OpRebuild:       "rebuild",
	OpExec:          "exec",
	OpAttachConsole: "attach-console",
}

// String returns the operation's name as it appears in an [OpError], such
// as "power-off". Both reboots are "reboot".
func (op Operation) String() string {
	if op > 0 && int(op) < len(opNames) {
		return opNames[op]
	}
	return "unknown"
}

// TransitionOf returns the row of op. The slices are copies.
func TransitionOf(op Operation) Transition {
	if op <= 0 || int(op) >= len(stateTable) {
		return Transition{Op: op}
	}
	t := stateTable[op]
	t.Valid, t.Noop = slices.Clone(t.Valid), slices.Clone(t.Noop)
	return t
}

// StateTable returns every row of the state table, in [Operation] order.
func StateTable() []Transition {
	out := make([]Transition, 0, len(stateTable)-1)
	for op := OpPowerOff; int(op) < len(stateTable); op++ {
		out = append(out, TransitionOf(op))
	}
	return out
}

// Check applies op's row to an instance in state cur: act is true when the
// operation must act; (false, nil) means it is a no-op; otherwise the
// error is a *[StateError] naming the valid states.
func (op Operation) Check(id string, cur State) (act bool, err error) {
	t := TransitionOf(op)
	if slices.Contains(t.Noop, cur) {
		return false, nil
	}
	if err := CheckState(op.String(), id, cur, t.Valid...); err != nil {
		return false, err
	}
	return true, nil
}
