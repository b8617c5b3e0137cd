package lab

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dockervisor/dockervisor/hypervisor"
	"github.com/dockervisor/dockervisor/hypervisor/hypervisortest"
)

const demo = `
name: demo
instances:
  web:
    image: img:1
    flavor: {vcpus: 2, memory: 64}
    depends_on: [db]
  db:
    image: img:1
  cache:
    image: img:1
    depends_on: [db]
`

func parse(t *testing.T, s string) *File {
	t.Helper()
	f, err := Parse(strings.NewReader(s))
	require.NoError(t, err)
	return f
}

func TestParseErrors(t *testing.T) {
	for name, s := range map[string]string{
		"bad name":     "name: Demo\ninstances: {a: {image: x}}",
		"no instances": "name: d",
		"unknown key":  "name: d\ninstances: {a: {image: x, flavour: {}}}",
		"no image":     "name: d\ninstances: {a: {}}",
		"missing dep":  "name: d\ninstances: {a: {image: x, depends_on: [b]}}",
		"cycle":        "name: d\ninstances: {a: {image: x, depends_on: [b]}, b: {image: x, depends_on: [a]}}",
		"bad cidr":     "name: d\nnetworks: {n: {cidr: 10.0.0.1/24}}\ninstances: {a: {image: x}}",
		"bad gateway":  "name: d\nnetworks: {n: {cidr: 10.0.0.0/24, gateway: 10.1.0.1}}\ninstances: {a: {image: x}}",
		"no network":   "name: d\ninstances: {a: {image: x, ports: [{network: n, ip: 10.0.0.2}]}}",
		"ip outside":   "name: d\nnetworks: {n: {cidr: 10.0.0.0/24}}\ninstances: {a: {image: x, ports: [{network: n, ip: 10.9.0.2}]}}",
		"flavor":       "name: d\ninstances: {a: {image: x, flavor: {vcpus: 99999}}}",
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Parse(strings.NewReader(s))
			assert.ErrorIs(t, err, ErrInvalid)
		})
	}
}

func TestWavesAndSpec(t *testing.T) {
	f := parse(t, demo)
	waves, err := f.Waves()
	require.NoError(t, err)
	assert.Equal(t, [][]string{{"db"}, {"cache", "web"}}, waves)
	s := f.Spec("web")
	assert.Equal(t, "demo-web", s.ID)
	assert.Equal(t, "web", s.Name)
	assert.Equal(t, 2, s.VCPUs)
	assert.EqualValues(t, 64, s.MemoryMB)
	assert.Equal(t, "demo", s.Labels[LabelLab])
	assert.NotEqual(t, s.Labels[LabelSpec], f.Spec("db").Labels[LabelSpec])
}

func TestVIFs(t *testing.T) {
	f := parse(t, "name: d\nnetworks: {n: {cidr: 10.0.0.0/24, gateway: 10.0.0.1, mtu: 1400}}\ninstances: {a: {image: x, ports: [{network: n, ip: 10.0.0.2}]}}")
	v := f.Spec("a").VIFs
	require.Len(t, v, 1)
	assert.Equal(t, f.BridgeName("n"), v[0].Bridge)
	assert.LessOrEqual(t, len(v[0].Bridge), 15)
	assert.Equal(t, "10.0.0.2", v[0].Subnets[0].IPs[0].String())
	assert.Equal(t, 1400, v[0].MTU)
	assert.Equal(t, v, f.Spec("a").VIFs, "deterministic")
	assert.True(t, strings.HasPrefix(v[0].Address.String(), "fa:16:3e:"))
}

func TestUpIsIdempotentAndDownRemovesAll(t *testing.T) {
	ctx := context.Background()
	drv := hypervisortest.NewFake(hypervisortest.WithImages("img:1"))
	opts := Options{StateDir: t.TempDir()}
	f := parse(t, demo)

	acts, err := Up(ctx, drv, f, opts)
	require.NoError(t, err)
	assert.Equal(t, []string{"created", "created", "created"}, actionsOf(acts))

	acts, err = Up(ctx, drv, f, opts)
	require.NoError(t, err)
	assert.Equal(t, []string{"unchanged", "unchanged", "unchanged"}, actionsOf(acts))

	// Repair: a stopped, a paused and a soft-deleted instance come back.
	require.NoError(t, drv.PowerOff(ctx, "demo-db", hypervisor.StopOptions{}))
	require.NoError(t, drv.Pause(ctx, "demo-web"))
	require.NoError(t, drv.SoftDelete(ctx, "demo-cache"))
	acts, err = Up(ctx, drv, f, opts)
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{"started", "unpaused", "restored"}, actionsOf(acts))

	// A changed spec is replaced; an instance gone from the file is removed.
	f2 := parse(t, strings.Replace(strings.Replace(demo, "memory: 64", "memory: 128", 1), "  cache:\n    image: img:1\n    depends_on: [db]\n", "", 1))
	acts, err = Up(ctx, drv, f2, opts)
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{"removed", "unchanged", "replaced"}, actionsOf(acts))
	info, err := drv.Info(ctx, "demo-web")
	require.NoError(t, err)
	assert.EqualValues(t, 128, info.MemoryMB)

	st, err := Status(ctx, drv, f)
	require.NoError(t, err)
	assert.Equal(t, "missing", st[0].State) // cache
	assert.True(t, st[2].Changed)           // web

	_, err = Down(ctx, drv, "demo", opts)
	require.NoError(t, err)
	list, err := drv.List(ctx, hypervisor.ListOptions{})
	require.NoError(t, err)
	assert.Empty(t, list)
	names, err := ListStates(opts.StateDir)
	require.NoError(t, err)
	assert.Empty(t, names)
}

func TestHalfFailedUpIsCleanedByDown(t *testing.T) {
	ctx := context.Background()
	drv := hypervisortest.NewFake(hypervisortest.WithImages("img:1"))
	opts := Options{StateDir: t.TempDir()}
	f := parse(t, "name: half\ninstances:\n  a: {image: img:1}\n  b: {image: missing:1, depends_on: [a]}\n")
	_, err := Up(ctx, drv, f, opts)
	require.ErrorIs(t, err, hypervisor.ErrImageNotFound)
	st, found, err := LoadState(opts.StateDir, "half")
	require.NoError(t, err)
	require.True(t, found)
	assert.Equal(t, []string{"half-a", "half-b"}, st.Instances)

	acts, err := Down(ctx, drv, "half", opts)
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{"destroyed", "absent"}, actionsOf(acts))
	list, err := drv.List(ctx, hypervisor.ListOptions{})
	require.NoError(t, err)
	assert.Empty(t, list)
}

func TestGraph(t *testing.T) {
	f := parse(t, "name: g\nnetworks: {n: {cidr: 10.0.0.0/24}}\ninstances:\n  a: {image: x, ports: [{network: n, ip: 10.0.0.2}]}\n  b: {image: x, depends_on: [a]}\n")
	var b bytes.Buffer
	require.NoError(t, f.Graph(&b, "dot"))
	assert.Contains(t, b.String(), `"i:a" -- "n:n" [label="eth0 10.0.0.2"];`)
	assert.Contains(t, b.String(), `"i:a" -- "i:b" [dir=forward`)
	b.Reset()
	require.NoError(t, f.Graph(&b, "mermaid"))
	assert.Contains(t, b.String(), `i_a ---|"eth0 10.0.0.2"| n_n`)
	assert.Contains(t, b.String(), `i_a -.->|after| i_b`)
	assert.True(t, errors.Is(f.Graph(&b, "png"), ErrInvalid))
}

func actionsOf(acts []Action) []string {
	var out []string
	for _, a := range acts {
		out = append(out, a.Action)
	}
	return out
}
