package docker

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/dockervisor/dockervisor/internal/atomicfile"
)

// opLog remembers, per container, which driver operation ran when, so
// that an engine event can name the operation that caused it. It keeps
// the operations in <scope>/ops.jsonl too, so that every Driver sharing
// the state directory, in this process or another (a CLI runs one
// operation per process; an agent restarts), names the operations of
// the others: a replay or a live stream in one process gives the start
// that another process's PowerOn made as that operation's, not as
// something outside the driver acting.
type opLog struct {
	mu sync.Mutex
	by map[string][]opSpan

	path  string   // the file; "" keeps the operations in memory only
	lock  *os.File // <scope>/ops.lock: appends share it, a compaction takes it alone
	self  opOwner  // this Driver, whose spans are in memory already
	file  os.FileInfo
	off   int64 // bytes of the file read
	lines int   // lines in the file, as far as this Driver knows
}

type opSpan struct {
	op         string
	start, end time.Time // end is zero while the operation runs
	// startedAt is the engine's time of the start this operation
	// completed (zero if it completed none): an exit after it is not the
	// operation's doing.
	startedAt time.Time
	// exitedAfter notes that an exit after startedAt and after the end
	// has been seen: the container left the run the operation started,
	// so no later event is the operation's.
	exitedAfter bool
	// owner is the Driver that ran the operation, when another did
	// (nil for this Driver's own).
	owner *opOwner
}

// opLine is a line of the operations file: an operation's beginning (E
// zero) or its end.
type opLine struct {
	C  string  `json:"c"` // container ID
	Op string  `json:"op"`
	S  int64   `json:"s"`            // start, ns since the epoch
	E  int64   `json:"e,omitempty"`  // end
	St int64   `json:"st,omitempty"` // the engine's time of the start it completed
	O  opOwner `json:"o"`
}

// opLogKeep bounds how long operations are remembered: replays further
// back name no operation.
const opLogKeep = time.Hour

// opSkew is the clock difference allowed between the engine's event
// times and this process's.
const opSkew = 100 * time.Millisecond

// opOrphan is how long after its start an operation whose process died
// before it ended still names the events of its container: the moment it
// died is not known, and the events its requests caused came soon after
// them.
const opOrphan = time.Minute

// opFileLines is how long the operations file grows before a Driver
// rewrites it with the operations of the last opLogKeep only.
const opFileLines = 4096

// open makes the log keep its operations in dir/ops.jsonl, and reads the
// operations other Drivers wrote there.
func (l *opLog) open(dir string, self opOwner) error {
	lock, err := os.OpenFile(filepath.Join(dir, "ops.lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.path, l.lock, l.self = filepath.Join(dir, "ops.jsonl"), lock, self
	l.catchUp()
	return nil
}

// close releases the lock file.
func (l *opLog) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.lock != nil {
		_ = l.lock.Close()
		l.lock = nil
		l.path = ""
	}
}

// begin notes that op starts on container cid; done notes its end.
func (l *opLog) begin(cid, op string) (done func()) {
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.add(cid, opSpan{op: op, start: now})
	l.write(opLine{C: cid, Op: op, S: now.UnixNano(), O: l.self})
	return func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		for k, s := range l.by[cid] {
			if s.owner == nil && s.start.Equal(now) && s.op == op {
				end := time.Now()
				l.by[cid][k].end = end
				line := opLine{C: cid, Op: op, S: now.UnixNano(), E: end.UnixNano(), O: l.self}
				if !s.startedAt.IsZero() {
					line.St = s.startedAt.UnixNano()
				}
				l.write(line)
				return
			}
		}
	}
}

// add inserts span s of cid in start order, dropping the spans that
// ended more than opLogKeep ago and all but the last 64.
func (l *opLog) add(cid string, s opSpan) {
	if l.by == nil {
		l.by = make(map[string][]opSpan)
	}
	spans := l.by[cid]
	now := time.Now()
	for len(spans) > 0 && (len(spans) > 64 || (!spans[0].end.IsZero() && now.Sub(spans[0].end) > opLogKeep)) {
		spans = spans[1:]
	}
	i := len(spans)
	for i > 0 && spans[i-1].start.After(s.start) {
		i--
	}
	l.by[cid] = slices.Insert(spans, i, s)
}

// started notes that the operation running on cid completed a start of
// the container at startedAt, on the engine's clock.
func (l *opLog) started(cid string, startedAt time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	spans := l.by[cid]
	for i := len(spans) - 1; i >= 0; i-- {
		if spans[i].owner == nil && spans[i].end.IsZero() {
			spans[i].startedAt = startedAt
			return
		}
	}
}

// at returns the operation that ran on cid at t, if one did. An event
// up to opSkew after an operation's end is its, as the engine's clock may
// run that much behind; an exit or a kill (exit true) is not, though, once the
// operation has completed a start before it on the engine's clock: the
// operation ended with the container running, so that exit is the
// container's own (a crash right after a power-on), and so is every event
// after such an exit (a start through the engine right after). An operation of
// another Driver whose process died before it ended names the events of
// the opOrphan after its start.
func (l *opLog) at(cid string, t time.Time, exit bool) (string, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.catchUp()
	spans := l.by[cid]
	for i := len(spans) - 1; i >= 0; i-- {
		s := spans[i]
		if t.Before(s.start.Add(-opSkew)) {
			continue
		}
		if s.end.IsZero() && s.owner != nil && !s.owner.alive() {
			s.end = s.start.Add(opOrphan)
		}
		if s.end.IsZero() || !t.After(s.end) {
			return s.op, true
		}
		if !t.After(s.end.Add(opSkew)) {
			if exit && !s.startedAt.IsZero() && t.After(s.startedAt) {
				spans[i].exitedAfter = true
				return "", false
			}
			if s.exitedAfter {
				return "", false
			}
			return s.op, true
		}
	}
	return "", false
}

// write appends line to the file (the caller holds l.mu). A failure
// costs the other Drivers this operation's name on its events, so it is
// not the operation's failure.
func (l *opLog) write(line opLine) {
	if l.path == "" {
		return
	}
	b, err := json.Marshal(line)
	if err != nil {
		return
	}
	if l.lines >= opFileLines {
		l.compact()
	}
	if lockFile(l.lock, false) != nil {
		return
	}
	defer unlockFile(l.lock)
	f, err := os.OpenFile(l.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return
	}
	if _, err := f.Write(append(b, '\n')); err == nil {
		l.lines++
	}
	_ = f.Close()
}

// catchUp reads the lines other Drivers appended since the last call (all
// of the file once another Driver rewrote it). The caller holds l.mu.
func (l *opLog) catchUp() {
	if l.path == "" {
		return
	}
	fi, err := os.Stat(l.path)
	if err != nil {
		return
	}
	if l.file == nil || !os.SameFile(l.file, fi) || fi.Size() < l.off {
		l.off, l.lines = 0, 0
	}
	l.file = fi
	if fi.Size() == l.off {
		return
	}
	f, err := os.Open(l.path)
	if err != nil {
		return
	}
	defer f.Close()
	if _, err := f.Seek(l.off, io.SeekStart); err != nil {
		return
	}
	r := bufio.NewReader(f)
	for {
		b, err := r.ReadBytes('\n')
		if err != nil {
			return // a line not whole yet is read next time
		}
		l.off += int64(len(b))
		l.lines++
		var line opLine
		if json.Unmarshal(bytes.TrimSpace(b), &line) != nil || line.C == "" || line.O.Driver == l.self.Driver {
			continue
		}
		l.merge(line)
	}
}

// merge takes in another Driver's line.
func (l *opLog) merge(line opLine) {
	start := time.Unix(0, line.S)
	for k, s := range l.by[line.C] {
		if s.owner != nil && s.owner.Driver == line.O.Driver && s.start.Equal(start) && s.op == line.Op {
			if line.E != 0 {
				l.by[line.C][k].end = time.Unix(0, line.E)
			}
			if line.St != 0 {
				l.by[line.C][k].startedAt = time.Unix(0, line.St)
			}
			return
		}
	}
	o := line.O
	s := opSpan{op: line.Op, start: start, owner: &o}
	if line.E != 0 {
		s.end = time.Unix(0, line.E)
		if time.Since(s.end) > opLogKeep {
			return
		}
	}
	if line.St != 0 {
		s.startedAt = time.Unix(0, line.St)
	}
	l.add(line.C, s)
}

// compact rewrites the file with the operations still remembered (the
// caller holds l.mu): the lines of the last opLogKeep, and the
// beginnings of operations still running.
func (l *opLog) compact() {
	if lockFile(l.lock, true) != nil {
		return
	}
	defer unlockFile(l.lock)
	l.catchUp()
	var all []byte
	n := 0
	for cid, spans := range l.by {
		for _, s := range spans {
			if !s.end.IsZero() && time.Since(s.end) > opLogKeep {
				continue
			}
			o := l.self
			if s.owner != nil {
				o = *s.owner
			}
			line := opLine{C: cid, Op: s.op, S: s.start.UnixNano(), O: o}
			if !s.end.IsZero() {
				line.E = s.end.UnixNano()
			}
			if !s.startedAt.IsZero() {
				line.St = s.startedAt.UnixNano()
			}
			b, err := json.Marshal(line)
			if err != nil {
				continue
			}
			all = append(append(all, b...), '\n')
			n++
		}
	}
	if err := atomicfile.WriteFile(l.path, all); err != nil {
		return
	}
	if fi, err := os.Stat(l.path); err == nil {
		l.file, l.off, l.lines = fi, fi.Size(), n
	}
}
