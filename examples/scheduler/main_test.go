package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/client"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dockervisor/dockervisor/hypervisor"
	"github.com/dockervisor/dockervisor/internal/testenv"
	"github.com/dockervisor/dockervisor/placement"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testenv.StopEngines()
	testenv.StopPlacement()
	os.Exit(code)
}

func engineSpecs(es []*testenv.Engine) []engineSpec {
	var out []engineSpec
	for i, e := range es {
		s := engineSpec{Name: "engine" + string(rune('a'+i)) + "-" + e.Name, Host: e.Socket}
		if e.TCP != "" {
			s.Host, s.CertDir = e.TCP, e.TLS.Dir
		}
		out = append(out, s)
	}
	return out
}

// providersWith returns the providers carrying trait, by name.
func providersWith(t *testing.T, ep, trait string) map[string]string {
	var rps struct {
		Providers []struct {
			UUID string `json:"uuid"`
			Name string `json:"name"`
		} `json:"resource_providers"`
	}
	testenv.PlacementGet(t, ep, placement.Microversion, "/resource_providers?required="+trait, &rps)
	out := map[string]string{}
	for _, p := range rps.Providers {
		out[p.Name] = p.UUID
	}
	return out
}

// containersOn counts the containers of an engine.
func containersOn(t *testing.T, e *testenv.Engine) int {
	l, err := e.Client.ContainerList(t.Context(), client.ContainerListOptions{All: true})
	require.NoError(t, err)
	return len(l.Items)
}

// TestSchedulerEndToEnd runs the example against three private engines
// (one over TCP with TLS) and a real Placement: it places 12 instances,
// one engine is killed after the fourth; the dead engine's provider is
// disabled, its instances are reported, everything else runs elsewhere,
// Placement's allocations match the instances on every live engine, the
// openstack CLI lists the providers, and cleanup leaves nothing.
func TestSchedulerEndToEnd(t *testing.T) {
	ep := testenv.MustHavePlacement(t)
	es := []*testenv.Engine{
		testenv.StartEngine(t, testenv.EngineOptions{}),
		testenv.StartEngine(t, testenv.EngineOptions{}),
		testenv.StartEngine(t, testenv.EngineOptions{TLS: true}),
	}
	const image = "dockervisor-test/busybox:sched"
	for _, e := range es {
		require.NoError(t, e.LoadBusybox(t.Context(), image))
	}
	specs := engineSpecs(es)
	trait := placement.CustomTrait(testenv.UniqueName("sched"))
	victim := 1
	var killed bool
	var placedBeforeKill int
	cfg := config{
		Placement: ep, Token: testenv.PlacementToken, Engines: specs, StateDir: t.TempDir(),
		Image: image, Command: []string{"sleep", "3600"}, Count: 12, Parallel: 1,
		Flavors: []flavor{{"tiny", 1, 64}, {"small", 2, 128}}, Weigher: "spread", Trait: trait,
		Limit: 2, // two of the three providers per answer
		afterPlaced: func(n int) {
			if n == 4 && !killed {
				es[victim].Kill()
				killed, placedBeforeKill = true, n
			}
		},
	}
	var out bytes.Buffer
	res, err := run(t.Context(), cfg, &out)
	t.Log("\n" + out.String())
	require.NoError(t, err)
	require.True(t, killed)
	require.Len(t, res.Placed, 12, "every instance placed despite the dead engine")
	require.Empty(t, res.Failed)

	// The dead engine: taken down, its provider disabled, its instances reported.
	require.Len(t, res.Down, 1)
	down := res.Down[0]
	assert.Equal(t, specs[victim].Name, down.Target.Name)
	assert.ErrorIs(t, down.Cause, hypervisor.ErrUnavailable)
	var onVictim []string
	for i, id := range res.Order {
		if res.Placed[id] == specs[victim].Name {
			require.Less(t, i, placedBeforeKill, "nothing placed on the dead engine after it died")
			onVictim = append(onVictim, id)
		}
	}
	assert.ElementsMatch(t, onVictim, down.Instances, "the dead engine's instances are reported")
	var tr struct {
		Traits []string `json:"traits"`
	}
	testenv.PlacementGet(t, ep, placement.Microversion, "/resource_providers/"+res.Hosts[specs[victim].Name]+"/traits", &tr)
	assert.Contains(t, tr.Traits, placement.TraitDisabled)
	assert.Contains(t, out.String(), "DOWN (disabled)")

	// Live engines: allocations match instances, one for one.
	c, err := placement.NewNoAuthClient(ep, testenv.PlacementToken)
	require.NoError(t, err)
	for i, s := range specs {
		held, err := placement.ProviderAllocations(t.Context(), c, res.Hosts[s.Name])
		require.NoError(t, err)
		var want []string
		for id, h := range res.Placed {
			if h == s.Name {
				want = append(want, id)
			}
		}
		got := make([]string, 0, len(held))
		for id := range held {
			got = append(got, id)
		}
		assert.ElementsMatch(t, want, got, "allocations on %s", s.Name)
		if i != victim {
			assert.Equal(t, len(want), containersOn(t, es[i]), "instances on %s", s.Name)
		}
	}

	// The openstack CLI lists the three providers.
	cli, err := exec.CommandContext(t.Context(), "openstack", "--os-auth-type", "admin_token", "--os-token", testenv.PlacementToken,
		"--os-endpoint", ep, "--os-placement-api-version", "1.39", "resource", "provider", "list", "--required", trait, "-f", "json").CombinedOutput()
	require.NoError(t, err, "%s", cli)
	for _, s := range specs {
		assert.Contains(t, string(cli), s.Name)
	}

	// Cleanup: a second run with nothing to place and -cleanup removes
	// the instances, the claims and the providers.
	cfg.Count, cfg.Cleanup, cfg.afterPlaced = 0, true, nil
	cfg.Engines = []engineSpec{specs[0], specs[2]}
	_, err = run(t.Context(), cfg, io.Discard)
	require.NoError(t, err)
	// The dead engine's provider still holds the stranded claims; the
	// first run's cleanup is what handles a down host.
	cl, err := placement.NewClaimer(c, placement.Owner{})
	require.NoError(t, err)
	require.NoError(t, cleanup(context.WithoutCancel(t.Context()), cl, nil, result{}))
	for _, id := range down.Instances {
		require.NoError(t, cl.Release(t.Context(), id))
	}
	require.NoError(t, placement.DeleteProvider(t.Context(), c, res.Hosts[specs[victim].Name]))
	assert.Empty(t, providersWith(t, ep, trait), "no providers left")
	for id := range res.Placed {
		held, err := cl.Allocations(t.Context(), id)
		require.NoError(t, err)
		assert.Empty(t, held, "no allocations left for %s", id)
	}
	assert.Zero(t, containersOn(t, es[0]))
	assert.Zero(t, containersOn(t, es[2]))
	for _, e := range es {
		require.NoError(t, e.Stop())
		assert.Empty(t, e.EngineLeftovers())
	}
}

// TestSchedulersRace runs two schedulers at once over the same 24
// instance IDs and three engines whose capacity is exactly 24 vCPUs:
// every instance is placed exactly once (one scheduler wins each ID),
// capacity is never exceeded, and cleanup leaves nothing.
func TestSchedulersRace(t *testing.T) {
	ep := testenv.MustHavePlacement(t)
	es := testenv.MustHaveEngines(t)
	specs := engineSpecs(es)
	trait := placement.CustomTrait(testenv.UniqueName("race"))
	dir := t.TempDir()
	var ids []string
	for range 24 {
		ids = append(ids, placement.NewUUID())
	}
	// Each engine host has 2 CPUs here: a ratio of 4 gives 8 vCPUs each.
	base := config{
		Placement: ep, Token: testenv.PlacementToken, Engines: specs, StateDir: dir,
		Image: testenv.EngineBusybox, Command: []string{"sleep", "3600"}, Parallel: 3,
		Flavors: []flavor{{"tiny", 1, 16}}, Weigher: "pack", Trait: trait, CPURatio: 4,
		Limit: 1, // one candidate per answer: full engines drop out of the answers

	}
	// Register once, so both schedulers find the same node UUIDs.
	_, err := run(t.Context(), base, io.Discard)
	require.NoError(t, err)
	t.Cleanup(func() {
		cfg := base
		cfg.Cleanup = true
		_, err := run(context.WithoutCancel(t.Context()), cfg, io.Discard)
		assert.NoError(t, err)
		assert.Empty(t, providersWith(t, ep, trait), "no providers left")
	})

	var (
		wg   sync.WaitGroup
		res  [2]result
		errs [2]error
		outs [2]bytes.Buffer
	)
	for i := range 2 {
		wg.Go(func() {
			cfg := base
			cfg.IDs = ids
			res[i], errs[i] = run(t.Context(), cfg, &outs[i])
		})
	}
	wg.Wait()
	t.Log("\n" + outs[0].String() + "\n" + outs[1].String())
	require.NoError(t, errs[0])
	require.NoError(t, errs[1])
	placed := map[string]string{}
	for _, r := range res {
		for id, h := range r.Placed {
			_, dup := placed[id]
			require.False(t, dup, "%s placed twice", id)
			placed[id] = h
		}
		assert.Empty(t, r.Failed)
	}
	require.Len(t, placed, len(ids), "every instance placed once")
	assert.Len(t, res[0].Elsewhere, len(res[1].Placed))
	assert.Len(t, res[1].Elsewhere, len(res[0].Placed))
	perHost := map[string]int{}
	for _, h := range placed {
		perHost[h]++
	}
	for i, s := range specs {
		assert.Equal(t, 8, perHost[s.Name], "engine %s full, not beyond", s.Name)
		l, err := es[i].Client.ContainerList(t.Context(), client.ContainerListOptions{All: true})
		require.NoError(t, err)
		n := 0
		for _, ctr := range l.Items {
			for _, id := range ids {
				if strings.Contains(ctr.Names[0], id) {
					n++
				}
			}
		}
		assert.Equal(t, 8, n, "containers on %s", s.Name)
	}

	// A copy of a placed instance on another engine, as a claim answered
	// after Place's check could leave: a run with -sweep keeps the copy
	// where the claim is and removes the other.
	c, err := placement.NewNoAuthClient(ep, testenv.PlacementToken)
	require.NoError(t, err)
	hosts, err := register(t.Context(), c, base)
	t.Cleanup(func() {
		for _, h := range hosts {
			h.driver.Close()
		}
	})
	require.NoError(t, err)
	dup := ids[0]
	var from, to *host
	for _, h := range hosts {
		if h.spec.Name == placed[dup] {
			from = h
		} else if to == nil {
			to = h
		}
	}
	require.NotNil(t, from)
	require.NotNil(t, to)
	_, err = to.driver.Spawn(t.Context(), hypervisor.InstanceSpec{ID: dup, Image: testenv.EngineBusybox, Command: []string{"sleep", "3600"}, VCPUs: 1, MemoryMB: 16})
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, to.driver.Destroy(context.WithoutCancel(t.Context()), dup)) })
	cfg := base
	cfg.Sweep, cfg.SweepAge = true, 0
	var out bytes.Buffer
	sw, err := run(t.Context(), cfg, &out)
	t.Log("\n" + out.String())
	require.NoError(t, err)
	assert.Equal(t, map[string]string{dup: from.uuid}, sw.Swept.Kept)
	assert.Equal(t, map[string][]string{dup: {to.uuid}}, sw.Swept.Removed)
	assert.Empty(t, sw.Swept.Unsettled)
	assert.Contains(t, out.String(), fmt.Sprintf("swept %s: kept on %s (its claim), removed from %s", dup, from.spec.Name, to.spec.Name))
	_, err = to.driver.Info(t.Context(), dup)
	assert.ErrorIs(t, err, hypervisor.ErrNotFound, "the copy without the claim is gone")
	_, err = from.driver.Info(t.Context(), dup)
	assert.NoError(t, err, "the copy with the claim runs")
}

// TestRunRefusesNegativeSweepAge: a negative -sweep-age is refused before
// anything is registered or placed.
func TestRunRefusesNegativeSweepAge(t *testing.T) {
	cfg := config{Engines: []engineSpec{{Name: "a", Host: "unix:///nonexistent.sock"}}, Image: "busybox", Sweep: true, SweepAge: -time.Second}
	var out bytes.Buffer
	_, err := run(t.Context(), cfg, &out)
	require.ErrorContains(t, err, "-sweep-age -1s: want 0 or more")
	assert.Empty(t, out.String(), "nothing registered")
}
