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
