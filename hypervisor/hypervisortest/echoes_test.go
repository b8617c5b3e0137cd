package hypervisortest

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/dockervisor/dockervisor/hypervisor"
)

func TestWithoutPauseEchoes(t *testing.T) {
	const (
		s  = hypervisor.EventStarted
		p  = hypervisor.EventPaused
		u  = hypervisor.EventUnpaused
		st = hypervisor.EventStopped
	)
	for _, c := range []struct {
		name     string
		in, want []hypervisor.EventType
	}{
		{"no echo", []hypervisor.EventType{s, p, u, st}, []hypervisor.EventType{s, p, u, st}},
		{"echo after the unpause", []hypervisor.EventType{s, p, u, p, u, st}, []hypervisor.EventType{s, p, u, st}},
		{"echo at the end", []hypervisor.EventType{s, p, u, p, u}, []hypervisor.EventType{s, p, u}},
		{"paused not followed by unpaused", []hypervisor.EventType{s, p, u, p, st}, []hypervisor.EventType{s, p, u, p, st}},
		{"paused at the end", []hypervisor.EventType{p, u, p}, []hypervisor.EventType{p, u, p}},
		{"first pause", []hypervisor.EventType{p, u}, []hypervisor.EventType{p, u}},
		{"pause after a start", []hypervisor.EventType{u, s, p, u}, []hypervisor.EventType{u, s, p, u}},
		{"empty", nil, []hypervisor.EventType{}},
	} {
		t.Run(c.name, func(t *testing.T) {
			in := make([]hypervisor.Event, len(c.in))
			for i, typ := range c.in {
				in[i] = hypervisor.Event{Type: typ, ExitCode: i}
			}
			out := WithoutPauseEchoes(in)
			got := make([]hypervisor.EventType, len(out))
			for i, ev := range out {
				got[i] = ev.Type
			}
			assert.Equal(t, c.want, got)
			for i := 1; i < len(out); i++ {
				assert.Less(t, out[i-1].ExitCode, out[i].ExitCode, "order kept")
			}
		})
	}
}
