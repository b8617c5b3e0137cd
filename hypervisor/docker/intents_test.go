package docker

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// stopIntents decides whether an exit was the driver's stop (a shutdown)
// or a crash; these tests drive it with explicit times, no engine.
func TestStopIntents(t *testing.T) {
	d := (&Driver{core: core{opts: options{stopTimeout: 10 * time.Second}}}).wire()
	assert.False(t, d.intended("c1", time.Now()), "no stop recorded")

	d.intents.record("c1")
	stopAt := d.intents.at["c1"].stopAt
	assert.True(t, d.intended("c1", stopAt.Add(2*time.Second)), "exit right after the stop")
	assert.True(t, d.intended("c1", stopAt.Add(-500*time.Millisecond)), "within the clock skew allowed")
	assert.False(t, d.intended("c1", stopAt.Add(-5*time.Second)), "an exit before the stop")
	assert.False(t, d.intended("c1", stopAt.Add(2*time.Minute)), "long after a stop with no start seen")

	started := stopAt.Add(3 * time.Second)
	d.intents.started("c1", started)
	assert.True(t, d.intended("c1", started.Add(-time.Second)), "exit between stop and start")
	assert.False(t, d.intended("c1", started.Add(time.Second)), "exit after the next start is a crash")

	// A second start does not move the bound of the first.
	d.intents.started("c1", started.Add(time.Hour))
	assert.False(t, d.intended("c1", started.Add(time.Minute)))

	// A start of a container never stopped records nothing.
	d.intents.started("c2", started)
	assert.False(t, d.intended("c2", started.Add(-time.Second)))
}

func TestStopIntentsForgetOldEntries(t *testing.T) {
	var s stopIntents
	s.record("old")
	in := s.at["old"]
	in.stopAt = in.stopAt.Add(-2 * time.Hour)
	s.at["old"] = in
	s.record("new")
	assert.NotContains(t, s.at, "old")
	assert.Contains(t, s.at, "new")
}
