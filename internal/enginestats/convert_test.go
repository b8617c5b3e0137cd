package enginestats

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"github.com/stretchr/testify/require"

	"github.com/dockervisor/dockervisor/stats"
)

func decodeFile(t *testing.T, name string) container.StatsResponse {
	t.Helper()
	b, err := os.ReadFile(name)
	require.NoError(t, err)
	r, err := Decode(bytes.NewReader(b))
	require.NoError(t, err)
	return r
}

func TestConvertCgroupV1(t *testing.T) {
	r := decodeFile(t, "testdata/stats_cgroup_v1.json")
	in := Convert("inst-1", r)
	require.Equal(t, "inst-1", in.ID)
	require.Equal(t, time.Date(2026, 11, 24, 18, 35, 51, 743967494, time.UTC), in.Time.UTC())
	require.Equal(t, time.Duration(3138062736), in.CPUTime)
	// (3138062736-2141994744) / (3128240000000-3126210000000) * 2 CPUs * 100
	require.InDelta(t, 996067992.0/2030000000.0*200, in.CPUPercent, 1e-9)
	// v1 subtracts the hierarchical total_inactive_file, not inactive_file.
	require.Equal(t, uint64(8597504-4096000), in.MemoryBytes)
	require.Equal(t, uint64(64<<20), in.MemoryLimitBytes)
	// "Read"/"Write" over all devices; Sync, Async, Discard and Total ignored.
	require.Equal(t, uint64(4096+8192), in.BlockReadBytes)
	require.Equal(t, uint64(5242880), in.BlockWriteBytes)
	require.Empty(t, in.Interfaces)
}

func TestConvertCgroupV2(t *testing.T) {
	r := decodeFile(t, "testdata/stats_cgroup_v2.json")
	in := Convert("inst-2", r)
	require.Equal(t, time.Duration(500000000), in.CPUTime)
	// No percpu_usage on v2: online_cpus is used.
	require.InDelta(t, 100000000.0/4000000000.0*4*100, in.CPUPercent, 1e-9)
	require.Equal(t, uint64(6537216-4608000), in.MemoryBytes)
	require.Equal(t, uint64(128<<20), in.MemoryLimitBytes)
	require.Equal(t, uint64(7823360+1000), in.BlockReadBytes)
	require.Equal(t, uint64(20971520+24), in.BlockWriteBytes)
	require.Equal(t, []stats.Interface{
		{Device: "eth0", RxBytes: 1438, RxPackets: 17, RxErrors: 1, RxDropped: 2, TxBytes: 726, TxPackets: 9, TxErrors: 3, TxDropped: 4},
		{Device: "eth1", RxBytes: 10, RxPackets: 1, TxBytes: 20, TxPackets: 2},
	}, in.Interfaces)
}

func TestCPUPercentEdgeCases(t *testing.T) {
	var r container.StatsResponse
	r.CPUStats.CPUUsage.TotalUsage = 100
	r.CPUStats.SystemUsage = 1000
	r.CPUStats.OnlineCPUs = 2
	require.Zero(t, CPUPercent(r), "no previous sample (one-shot)")

	r.PreCPUStats = r.CPUStats
	require.Zero(t, CPUPercent(r), "zero deltas")

	r.PreCPUStats.CPUUsage.TotalUsage = 200
	r.PreCPUStats.SystemUsage = 500
	require.Zero(t, CPUPercent(r), "usage went backwards (restart)")

	r.PreCPUStats.CPUUsage.TotalUsage = 50
	r.CPUStats.OnlineCPUs = 0
	r.CPUStats.CPUUsage.PercpuUsage = []uint64{1, 2, 3}
	require.InDelta(t, 50.0/500*3*100, CPUPercent(r), 1e-9, "falls back to len(percpu_usage)")
}

func TestMemoryUsageNoCache(t *testing.T) {
	for name, tt := range map[string]struct {
		m    container.MemoryStats
		want uint64
	}{
		"v1":                         {container.MemoryStats{Usage: 1000, Stats: map[string]uint64{"total_inactive_file": 300, "inactive_file": 100}}, 700},
		"v1 cache larger than usage": {container.MemoryStats{Usage: 1000, Stats: map[string]uint64{"total_inactive_file": 3000, "inactive_file": 100}}, 900},
		"v2":                         {container.MemoryStats{Usage: 1000, Stats: map[string]uint64{"inactive_file": 400}}, 600},
		"v2 cache larger than usage": {container.MemoryStats{Usage: 1000, Stats: map[string]uint64{"inactive_file": 4000}}, 1000},
		"no stats (stopped or win)":  {container.MemoryStats{Usage: 1000}, 1000},
		"zero":                       {container.MemoryStats{}, 0},
	} {
		require.Equal(t, tt.want, MemoryUsageNoCache(tt.m), name)
	}
}

func TestDecodeMalformed(t *testing.T) {
	_, err := Decode(strings.NewReader(`{"read": 12`))
	require.ErrorIs(t, err, ErrDecode)
}

// fakeClient answers ContainerStats with a canned body or error.
type fakeClient struct {
	body string
	err  error
	got  client.ContainerStatsOptions
}

func (f *fakeClient) ContainerStats(_ context.Context, _ string, o client.ContainerStatsOptions) (client.ContainerStatsResult, error) {
	f.got = o
	if f.err != nil {
		return client.ContainerStatsResult{}, f.err
	}
	return client.ContainerStatsResult{Body: io.NopCloser(strings.NewReader(f.body))}, nil
}

func TestFetchWithFake(t *testing.T) {
	b, err := os.ReadFile("testdata/stats_cgroup_v2.json")
	require.NoError(t, err)
	f := &fakeClient{body: string(b)}
	in, err := Fetch(t.Context(), f, "abc", Options{IncludePreviousSample: true})
	require.NoError(t, err)
	require.Equal(t, client.ContainerStatsOptions{Stream: false, IncludePreviousSample: true}, f.got)
	require.Equal(t, "abc", in.ID)
	require.Equal(t, uint64(128<<20), in.MemoryLimitBytes)

	errEngine := errors.New("engine down")
	_, err = Fetch(t.Context(), &fakeClient{err: errEngine}, "abc", Options{})
	require.ErrorIs(t, err, errEngine)

	_, err = Fetch(t.Context(), &fakeClient{body: "not json"}, "abc", Options{})
	require.ErrorIs(t, err, ErrDecode)
}
