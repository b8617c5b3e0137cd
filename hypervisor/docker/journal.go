package docker

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/dockervisor/dockervisor/hypervisor"
	"github.com/dockervisor/dockervisor/internal/atomicfile"
)

// journalWindow is how many of its own events (resize, reboot, soft
// delete, restore) a Driver keeps for replay, in memory and in
// <scope>/events.jsonl.
const journalWindow = 1024

// journal keeps the driver's own events, the ones the engine does not
// know of, for replay, and hands new ones to live subscribers.
type journal struct {
	path string

	mu     sync.Mutex
	events []hypervisor.Event // oldest first, at most journalWindow
	lines  int                // lines in the file
	ended  bool               // the file's last line is known to be whole
	subs   map[int]func(hypervisor.Event)
	nextID int
}

func openJournal(dir string) (*journal, error) {
	j := &journal{path: filepath.Join(dir, "events.jsonl"), subs: make(map[int]func(hypervisor.Event))}
	f, err := os.Open(j.path)
	if errors.Is(err, fs.ErrNotExist) {
		return j, nil
	}
	if err != nil {
		return nil, fmt.Errorf("event journal: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		j.lines++
		var ev hypervisor.Event
		if json.Unmarshal(sc.Bytes(), &ev) == nil && ev.ID != "" {
			j.events = append(j.events, ev)
		}
	}

	if n := len(j.events) - journalWindow; n > 0 {
		j.events = j.events[n:]
	}
	return j, nil
}

// add records ev and hands it to the live subscribers. A failure to
// persist is returned; the event is still delivered live.
func (j *journal) add(ev hypervisor.Event) error {
	b, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	j.events = append(j.events, ev)
	if n := len(j.events) - journalWindow; n > 0 {
		j.events = append(j.events[:0], j.events[n:]...)
	}
	for _, fn := range j.subs {
		fn(ev)
	}
	if j.lines >= 2*journalWindow {
		// Rewrite with the window only, atomically.
		var all []byte
		for _, e := range j.events {
			line, _ := json.Marshal(e)
			all = append(append(all, line...), '\n')
		}
		j.lines = len(j.events)
		return atomicfile.WriteFile(j.path, all)
	}
	if !j.ended {
		if err := endLine(j.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		j.ended = true
	}
	f, err := os.OpenFile(j.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	j.lines++
	_, err = f.Write(append(b, '\n'))
	return errors.Join(err, f.Close())
}

// since returns the recorded events with from <= Time < to.
func (j *journal) since(from, to time.Time) []hypervisor.Event {
	j.mu.Lock()
	defer j.mu.Unlock()
	var out []hypervisor.Event
	for _, ev := range j.events {
		if !ev.Time.Before(from) && ev.Time.Before(to) {
			out = append(out, ev)
		}
	}
	return out
}

// subscribe calls fn with every new event until the returned function
// is called. fn runs under the journal's lock and must not block.
func (j *journal) subscribe(fn func(hypervisor.Event)) (unsubscribe func()) {
	j.mu.Lock()
	id := j.nextID
	j.nextID++
	j.subs[id] = fn
	j.mu.Unlock()
	return func() {
		j.mu.Lock()
		delete(j.subs, id)
		j.mu.Unlock()
	}
}

// publish records one of the driver's own events (time now when unset).
func (d *eventRoom) publish(ev hypervisor.Event) {
	if ev.Time.IsZero() {
		ev.Time = time.Now()
	}
	if err := d.journal.add(ev); err != nil {
		d.log.Warn("event not recorded in the journal; a replay will miss it", "op", "publish", "id", ev.ID, "err", err)
	}
}

// opLog remembers, per container, which driver operation ran when, so
// that an engine event can name the operation that caused it.
type opLog struct {
	mu sync.Mutex
	by map[string][]opSpan
}

type opSpan struct {
	op         string
	start, end time.Time // end is zero while the operation runs
	// startedAt is the engine's time of the start this operation
	// completed (zero if it completed none): an exit after it is not the
	// operation's doing.
	startedAt time.Time
}

// opLogKeep bounds how long operations are remembered: replays further
// back name no operation.
const opLogKeep = time.Hour

// opSkew is the clock difference allowed between the engine's event
// times and this process's.
const opSkew = 100 * time.Millisecond

// begin notes that op starts on container cid; done notes its end.
func (l *opLog) begin(cid, op string) (done func()) {
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.by == nil {
		l.by = make(map[string][]opSpan)
	}
	spans := l.by[cid]
	for len(spans) > 0 && (len(spans) > 64 || (!spans[0].end.IsZero() && now.Sub(spans[0].end) > opLogKeep)) {
		spans = spans[1:]
	}
	l.by[cid] = append(spans, opSpan{op: op, start: now})
	i := len(l.by[cid]) - 1
	return func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		if s := l.by[cid]; i < len(s) && s[i].start.Equal(now) {
			s[i].end = time.Now()
		} else {
			for k := range s {
				if s[k].start.Equal(now) && s[k].op == op {
					s[k].end = time.Now()
				}
			}
		}
	}
}

// started notes that the operation running on cid completed a start of
// the container at startedAt, on the engine's clock.
func (l *opLog) started(cid string, startedAt time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	spans := l.by[cid]
	for i := len(spans) - 1; i >= 0; i-- {
		if spans[i].end.IsZero() {
			spans[i].startedAt = startedAt
			return
		}
	}
}

// at returns the operation that ran on cid at t, if one did. An event
// up to opSkew after an operation's end is its, as the engine's clock may
// run that much behind; an exit (exit true) is not, though, once the
// operation has completed a start before it on the engine's clock: the
// operation ended with the container running, so that exit is the
// container's own (a crash right after a power-on).
func (l *opLog) at(cid string, t time.Time, exit bool) (string, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	spans := l.by[cid]
	for i := len(spans) - 1; i >= 0; i-- {
		s := spans[i]
		if t.Before(s.start.Add(-opSkew)) {
			continue
		}
		if s.end.IsZero() || !t.After(s.end) {
			return s.op, true
		}
		if !t.After(s.end.Add(opSkew)) {
			if exit && !s.startedAt.IsZero() && t.After(s.startedAt) {
				return "", false
			}
			return s.op, true
		}
	}
	return "", false
}

// endLine ends the file at path with a newline if a process killed in
// the middle of an append left its last line without one, so that the
// next event is a line of its own (the cut one is skipped when read).
func endLine(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || st.Size() == 0 {
		return err
	}
	last := make([]byte, 1)
	if _, err := f.ReadAt(last, st.Size()-1); err != nil {
		return err
	}
	if last[0] == '\n' {
		return nil
	}
	_, err = f.WriteAt([]byte{'\n'}, st.Size())
	return err
}
