package docker

import (
	"sync"
	"time"
)

// stopIntents remembers, per container, when this driver last stopped it
// and when (on the engine's clock) the start after that began, so that an
// exit in between is reported as a stop even if the persisted mark was
// cleared by the time the event is read, and an exit after the next start
// (a crash) is not.
type stopIntents struct {
	mu sync.Mutex
	at map[string]stopIntent
}

type stopIntent struct {
	stopAt    time.Time // our clock, when the stop was asked for
	startedAt time.Time // engine clock, the next start; zero while stopped
}

// record notes that the driver is about to stop container cid.
func (s *stopIntents) record(cid string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.at == nil {
		s.at = make(map[string]stopIntent)
	}
	now := time.Now()
	for k, in := range s.at {
		if now.Sub(in.stopAt) > time.Hour {
			delete(s.at, k)
		}
	}
	s.at[cid] = stopIntent{stopAt: now}
}

// started notes that container cid was started again at startedAt (as
// the engine reports it): exits after that are not covered by the stop.
func (s *stopIntents) started(cid string, startedAt time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if in, ok := s.at[cid]; ok && in.startedAt.IsZero() {
		in.startedAt = startedAt
		s.at[cid] = in
	}
}

// intended reports whether an exit of cid at exit (engine clock) was
// caused by the driver's last stop of it.
func (d *recordRoom) intended(cid string, exit time.Time) bool {
	d.intents.mu.Lock()
	defer d.intents.mu.Unlock()
	in, ok := d.intents.at[cid]
	if !ok || exit.Before(in.stopAt.Add(-time.Second)) {
		// Allow a second of skew between the engine's clock and ours.
		return false
	}
	if !in.startedAt.IsZero() {
		return exit.Before(in.startedAt)
	}
	return exit.Sub(in.stopAt) < d.opts.stopTimeout+time.Minute
}
