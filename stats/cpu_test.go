package stats

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestCPUPercent(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	p := CPUPoint{CPUTime: 3 * time.Second, Wall: t0}
	require.InDelta(t, 50.0, CPUPercent(p, CPUPoint{CPUTime: 4 * time.Second, Wall: t0.Add(2 * time.Second)}), 1e-9)
	require.InDelta(t, 200.0, CPUPercent(p, CPUPoint{CPUTime: 7 * time.Second, Wall: t0.Add(2 * time.Second)}), 1e-9)
	require.Zero(t, CPUPercent(p, p), "zero wall delta")
	require.Zero(t, CPUPercent(p, CPUPoint{CPUTime: time.Second, Wall: t0.Add(time.Second)}), "restarted instance")
	require.Zero(t, CPUPercent(p, CPUPoint{CPUTime: 4 * time.Second, Wall: t0.Add(-time.Second)}), "wall went back")
}
