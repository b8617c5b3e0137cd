package stats

import "time"

// CPUPoint is one reading of an instance's cumulative CPU time together
// with the wall-clock time it was taken at.
type CPUPoint struct {
	CPUTime time.Duration // cumulative CPU time of the instance
	Wall    time.Time     // when it was read
}

// CPUPoint returns the instance sample's CPU time and sampling time, for
// CPUPercent.
func (i Instance) CPUPoint() CPUPoint { return CPUPoint{CPUTime: i.CPUTime, Wall: i.Time} }

// CPUPercent returns the CPU use of an instance between two points, in
// percent of one CPU (so 200 means two CPUs fully busy): 100 * ΔCPUTime /
// ΔWall. It returns 0 when the wall time did not advance or the CPU time
// went backwards (the instance restarted).
func CPUPercent(prev, cur CPUPoint) float64 {
	dw := cur.Wall.Sub(prev.Wall)
	dc := cur.CPUTime - prev.CPUTime
	if dw <= 0 || dc < 0 {
		return 0
	}
	return 100 * float64(dc) / float64(dw)
}
