package docker

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dockervisor/dockervisor/hypervisor"
	"github.com/dockervisor/dockervisor/internal/testenv"
	"github.com/dockervisor/dockervisor/network"
)

// crashOps are the operations the crash tests kill: every one that takes
// more than one engine (or VIF driver, or state directory) call.
var crashOps = []string{
	"spawn", "create-only", "power-on", "power-off", "reboot-soft", "reboot-hard",
	"soft-delete", "restore", "rebuild", "resize", "snapshot", "attach", "detach",
	"update-metadata", "destroy",
}

// crashProfile is what a random kill of an operation is drawn from: about
// how many calls the agent makes in it, and how long it takes here
// (measured with TestCrashCalibrate; a kill planned past the end kills
// nothing and is not counted).
var crashProfile = map[string]struct{ calls, ms int }{
	"spawn":           {10, 450},
	"create-only":     {6, 50},
	"power-on":        {4, 280},
	"power-off":       {3, 150},
	"reboot-soft":     {5, 550},
	"reboot-hard":     {6, 500},
	"soft-delete":     {3, 100},
	"restore":         {4, 300},
	"rebuild":         {11, 450},
	"resize":          {3, 35},
	"snapshot":        {6, 200},
	"attach":          {3, 60},
	"detach":          {3, 90},
	"update-metadata": {1, 80},
	"destroy":         {5, 120},
}

// crashTrial is one kill: the operation, its target, the agent's job, and
// the target as it was before.
type crashTrial struct {
	seed   uint64
	op     string
	id     string
	job    crashJob
	before instView
	after  []instView // the states the operation may leave (besides before)
}

func (c crashTrial) String() string {
	return fmt.Sprintf("seed %d: %s of %s, kill at %s", c.seed, c.op, c.id, c.job.Kill)
}

// randomPlan draws where the agent dies in op. Timer kills spread over
// the operation's time here times DOCKERVISOR_CRASH_TIME_SCALE (default 1;
// the kernel lane's emulated guest sets its own), so that on a slower host
// they still reach the operation's later steps.
func randomPlan(r *rand.Rand, op string) killPlan {
	p := crashProfile[op]
	if r.IntN(2) == 0 {
		ms := p.ms * crashTimeScale()
		return killPlan{Mode: "timer", DelayMS: r.IntN(ms + ms/4 + 1)}
	}
	plan := killPlan{Mode: "call", Call: r.IntN(p.calls + 1), When: []string{"before", "after", "during"}[r.IntN(3)]}
	if plan.When == "during" {
		plan.DelayUS = r.IntN(3000)
	}
	return plan
}

// prepare brings the world to a state op can run in (through d, the
// agent before the crash) and returns the trial, drawing its choices from
// r; plan nil draws the kill too.
func (w *crashWorld) prepare(ctx context.Context, d *Driver, seed uint64, op string, plan *killPlan) (crashTrial, error) {
	r := trialRand(seed)
	c := crashTrial{seed: seed, op: op, job: crashJob{Op: op}}
	if plan != nil {
		c.job.Kill = *plan
	} else {
		c.job.Kill = randomPlan(r, op)
	}
	// A few instances at most: destroy the oldest beyond three.
	for ids := w.known(); len(ids) > 3; ids = ids[1:] {
		if err := d.Destroy(ctx, ids[0]); err != nil {
			return c, err
		}
		delete(w.ids, ids[0])
	}
	if op == "spawn" || op == "create-only" {
		vifs := 2
		if op == "create-only" {
			vifs = 1
		}
		spec := w.spec(w.newID(), vifs)
		c.id, c.job.ID, c.job.Spec = spec.ID, spec.ID, &spec
		w.ids[spec.ID] = true // the agent records an instance before it spawns it
		st := hypervisor.StateRunning
		if op == "create-only" {
			st = hypervisor.StateCreated
		}
		meta, _ := json.Marshal(spec.Metadata)
		c.after = []instView{{present: true, state: st, image: spec.Image, memMB: spec.MemoryMB, vifs: portIDs(spec.VIFs), meta: string(meta)}}
		return c, nil
	}

	// The target: one of the world's instances, made to fit; one in the
	// state the operation needs if there is one (fewer operations to
	// prepare), else a new one now and then.
	need := func(inst hypervisor.Instance) bool { return true }
	switch op {
	case "attach":
		need = func(inst hypervisor.Instance) bool { return len(inst.VIFs) < 3 }
	case "detach":
		need = func(inst hypervisor.Instance) bool { return len(inst.VIFs) > 0 }
	}
	var want hypervisor.State
	switch op {
	case "power-on":
		want = pick(r, hypervisor.StateShutdown, hypervisor.StateShutdown, hypervisor.StateCreated)
	case "power-off", "soft-delete":
		want = pick(r, hypervisor.StateRunning, hypervisor.StateRunning, hypervisor.StatePaused, hypervisor.StateShutdown)
	case "reboot-soft", "resize", "attach":
		want = hypervisor.StateRunning
	case "reboot-hard", "rebuild":
		want = pick(r, hypervisor.StateRunning, hypervisor.StateRunning, hypervisor.StateShutdown)
	case "restore":
		want = hypervisor.StateSoftDeleted
	case "snapshot":
		want = pick(r, hypervisor.StateRunning, hypervisor.StateRunning, hypervisor.StatePaused)
	case "detach":
		want = pick(r, hypervisor.StateRunning, hypervisor.StateRunning, hypervisor.StateShutdown)
	default:
		want = pick(r, hypervisor.StateRunning, hypervisor.StateShutdown, hypervisor.StatePaused, hypervisor.StateSoftDeleted)
	}
	if w.state != hypervisor.StateUnknown {
		want = w.state
	}
	list, err := d.List(ctx, hypervisor.ListOptions{})
	if err != nil {
		return c, err
	}
	var id string
	if r.IntN(8) > 0 {
		var fit, ready []string
		for _, inst := range list {
			if w.ids[inst.ID] && need(inst) {
				fit = append(fit, inst.ID)
				if inst.State == want {
					ready = append(ready, inst.ID)
				}
			}
		}
		if len(ready) > 0 {
			id = ready[r.IntN(len(ready))]
		} else if len(fit) > 0 {
			id = fit[r.IntN(len(fit))]
		}
	}
	if id == "" {
		spec := w.spec(w.newID(), 1)
		w.ids[spec.ID] = true
		if _, err := d.Spawn(ctx, spec); err != nil {
			return c, err
		}
		id = spec.ID
	}
	c.id, c.job.ID = id, id
	if err := w.bringTo(ctx, d, id, want); err != nil {
		return c, fmt.Errorf("bring %s to %s: %w", id, want, err)
	}
	before, err := w.view(ctx, d, id)
	if err != nil {
		return c, err
	}
	c.before = before
	after := before
	switch op {
	case "power-on", "reboot-soft", "reboot-hard", "restore":
		after.state = hypervisor.StateRunning
	case "power-off":
		after.state = hypervisor.StateShutdown
	case "soft-delete":
		after.state = hypervisor.StateSoftDeleted
	case "rebuild":
		c.job.Image = w.images[0]
		if before.image == w.images[0] {
			c.job.Image = w.images[1]
		}
		after.image = c.job.Image
	case "resize":
		c.job.Flavor = hypervisor.Flavor{VCPUs: 1, MemoryMB: 64}
		if before.memMB == 64 {
			c.job.Flavor.MemoryMB = 96
		}
		after.memMB = c.job.Flavor.MemoryMB
	case "snapshot":
		after.snaps++
	case "attach":
		v := w.newVIF()
		c.job.VIF = &v
		after.vifs = withVIF(before.vifs, v.ID)
	case "detach":
		ports := parseVIFsView(before.vifs)
		gone := ports[r.IntN(len(ports))].VIF.ID
		c.job.VIF = &network.VIF{ID: gone}
		after.vifs = withoutVIF(before.vifs, gone)
	case "update-metadata":
		c.job.Meta = map[string]string{"k": fmt.Sprint(seed % 1000)}
		meta, _ := json.Marshal(c.job.Meta)
		after.meta = string(meta)
	case "destroy":
		after = instView{}
	}
	c.after = []instView{after}
	return c, nil
}

func pick[T any](r *rand.Rand, xs ...T) T { return xs[r.IntN(len(xs))] }

// bringTo makes instance id reach state want through d.
func (w *crashWorld) bringTo(ctx context.Context, d *Driver, id string, want hypervisor.State) error {
	var seen []hypervisor.State
	for range 4 {
		info, err := d.Info(ctx, id)
		if err != nil {
			return err
		}
		cur := info.State
		seen = append(seen, cur)
		if cur == want || want == hypervisor.StateCreated && cur == hypervisor.StateShutdown {
			// A created instance cannot be made again; shut down will do.
			return nil
		}
		switch {
		case cur == hypervisor.StateSoftDeleted:
			err = d.Restore(ctx, id)
		case want == hypervisor.StateSoftDeleted:
			err = d.SoftDelete(ctx, id)
		case cur == hypervisor.StatePaused:
			err = d.Unpause(ctx, id)
		case want == hypervisor.StatePaused && cur == hypervisor.StateRunning:
			err = d.Pause(ctx, id)
		case want == hypervisor.StateRunning, want == hypervisor.StatePaused, cur == hypervisor.StateCreated:
			err = d.PowerOn(ctx, id)
		default:
			err = d.PowerOff(ctx, id, hypervisor.StopOptions{})
		}
		if err != nil {
			return err
		}
	}
	return fmt.Errorf("%s did not reach %s (%v)", id, want, seen)
}

// runTrial runs one trial in world w: prepare (with a Driver of the agent
// before the crash), the agent's run and death, recovery (a new Driver:
// Reconcile with the remove policy, then Resume) and the checks. killed
// says whether the agent died before the operation ended.
func (w *crashWorld) runTrial(ctx context.Context, seed uint64, op string, plan *killPlan) (c crashTrial, run agentRun, err error) {
	t0 := time.Now()
	lap := func(i int) {
		now := time.Now()
		w.took[i] += now.Sub(t0)
		t0 = now
	}
	d, closeDriver := w.driver()
	c, err = w.prepare(ctx, d, seed, op, plan)
	closeDriver()
	lap(0)
	if err != nil {
		return c, run, fmt.Errorf("%s: prepare: %w", c, err)
	}
	run, err = w.runAgent(ctx, c.job)
	lap(1)
	if err != nil {
		return c, run, fmt.Errorf("%s: %w", c, err)
	}
	d, closeDriver, rep, res, err := w.recoverAgent(ctx)
	defer closeDriver()
	lap(2)
	if err != nil {
		return c, run, fmt.Errorf("%s: recovery: %w", c, err)
	}
	if op == "destroy" || op == "spawn" || op == "create-only" {
		if v, _ := w.view(ctx, d, c.id); !v.present {
			delete(w.ids, c.id) // the agent learns the instance is gone
		}
	}
	now, err := w.view(ctx, d, c.id)
	if err != nil {
		return c, run, fmt.Errorf("%s: view: %w", c, err)
	}
	if now != c.before && !slices.Contains(c.after, now) {
		err = fmt.Errorf("%s: the instance is %v; before it was %v, after it would be %v (reconcile %+v, resume %+v)", c, now, c.before, c.after, rep, res)
	}
	if cerr := w.checkWorld(ctx, d); cerr != nil {
		err = fmt.Errorf("%s: %w (reconcile %+v, resume %+v)", c, joinErrs(err, cerr), rep, res)
	}
	lap(3)
	if !run.killed && run.err != "" && err == nil {
		err = fmt.Errorf("%s: the operation failed without a crash: %s", c, run.err)
	}
	return c, run, err
}

func joinErrs(a, b error) error {
	if a == nil {
		return b
	}
	return fmt.Errorf("%w; %w", a, b)
}

// TestCrashCalibrate runs every operation once without a kill and logs
// the calls the agent made and how long the operation took: the numbers
// of crashProfile. It runs only with DOCKERVISOR_CRASH_CALIBRATE set.
func TestCrashCalibrate(t *testing.T) {
	if envInt("DOCKERVISOR_CRASH_CALIBRATE", 0) == 0 {
		t.Skip("set DOCKERVISOR_CRASH_CALIBRATE=N to measure the crash profile (N runs of each operation)")
	}
	w := newCrashWorld(t, crashImages(t))
	ctx := t.Context()
	for _, op := range crashOpsOf() {
		var calls, ms []int
		for i := range envInt("DOCKERVISOR_CRASH_CALIBRATE", 1) {
			_, run, err := w.runTrial(ctx, uint64(1000+i), op, &killPlan{Mode: "call", Call: 1 << 30})
			require.NoError(t, err)
			calls, ms = append(calls, run.calls), append(ms, int(run.took.Milliseconds()))
		}
		t.Logf("%-16s calls %v, ms %v", op, calls, ms)
	}
}

// crashTimeScale is DOCKERVISOR_CRASH_TIME_SCALE, at least 1.
func crashTimeScale() int { return max(1, envInt("DOCKERVISOR_CRASH_TIME_SCALE", 1)) }

// envInt reads a number from the environment, def when unset.
func envInt(name string, def int) int {
	if v := os.Getenv(name); v != "" {
		if n, err := strconv.Atoi(v); err == nil {
			return n
		}
	}
	return def
}

// crashImages returns busybox under two references, for rebuilds.
func crashImages(t *testing.T) [2]string {
	return [2]string{testenv.BusyboxImage(t), testenv.BusyboxImage(t)}
}

// crashOpsOf returns the operations DOCKERVISOR_CRASH_OPS names (comma
// separated), or all.
func crashOpsOf() []string {
	if v := os.Getenv("DOCKERVISOR_CRASH_OPS"); v != "" {
		return strings.Split(v, ",")
	}
	return crashOps
}

// TestCrashRecovery runs the agent as a child process and kills it with
// SIGKILL at random points of every operation that takes more than one
// call (crashOps), in several worlds at once (each its own prefixes,
// state directory, snapshot store and host namespace with Linux-bridge
// VIFs). After each kill a new Driver recovers as an agent does (Reconcile
// with the remove policy, Resume) and the checks run: the instance is as
// before the operation or as after it, and nothing is leaked or
// contradicts (see checkWorld). The world is torn down and checked at the
// end.
//
// DOCKERVISOR_CRASH_KILLS sets the number of kills (default 200; 20 with
// -short), DOCKERVISOR_CRASH_WORKERS the worlds run at once (default
// GOMAXPROCS, the default of -test.parallel).
// The run's seed is logged; DOCKERVISOR_CRASH_SEED replays one trial of
// a failure's message, DOCKERVISOR_CRASH_OPS restricts the operations,
// DOCKERVISOR_CRASH_TIME_SCALE stretches the timer kills (randomPlan).
func TestCrashRecovery(t *testing.T) {
	kills := envInt("DOCKERVISOR_CRASH_KILLS", 200)
	if testing.Short() {
		kills = envInt("DOCKERVISOR_CRASH_KILLS", 20)
	}
	// Worlds run as parallel subtests: more than -test.parallel (default
	// GOMAXPROCS) wait for a free slot.
	workers := max(1, envInt("DOCKERVISOR_CRASH_WORKERS", runtime.GOMAXPROCS(0)))
	images := crashImages(t)
	ops := crashOpsOf()
	if seed := os.Getenv("DOCKERVISOR_CRASH_SEED"); seed != "" {
		// Replay one trial: its operation and kill come from its seed.
		n, err := strconv.ParseUint(seed, 10, 64)
		require.NoError(t, err)
		w := newCrashWorld(t, images)
		op := ops[int(n%uint64(len(ops)))]
		c, run, err := w.runTrial(t.Context(), n, op, nil)
		require.NoError(t, err)
		t.Logf("%s: killed %v (%d calls done)", c, run.killed, run.calls)
		return
	}
	base := uint64(time.Now().UnixNano())
	t.Logf("crash run seed %d: %d kills in %d worlds (replay a trial: DOCKERVISOR_CRASH_SEED=<its seed>)", base, kills, workers)
	var left atomic.Int64
	left.Store(int64(kills))
	var trials, killed, clean atomic.Int64
	byOp := make([]atomic.Int64, len(ops))
	began := time.Now()
	t.Run("worlds", func(t *testing.T) {
		for wi := range workers {
			t.Run(fmt.Sprint(wi), func(t *testing.T) {
				t.Parallel()
				w := newCrashWorld(t, images)
				ctx := t.Context()
				defer func() {
					if w.took[0] == 0 {
						return
					}
					t.Logf("time in prepare %v, agent %v, recovery %v, checks %v", w.took[0].Round(time.Millisecond), w.took[1].Round(time.Millisecond), w.took[2].Round(time.Millisecond), w.took[3].Round(time.Millisecond))
				}()
				for i := 0; left.Load() > 0; i++ {
					// The trial's seed picks its operation: replayable.
					seed := base + uint64(wi)<<32 + uint64(i)
					k := int(seed % uint64(len(ops)))
					c, run, err := w.runTrial(ctx, seed, ops[k], nil)
					trials.Add(1)
					if err == nil {
						clean.Add(1)
					}
					if err != nil {
						t.Fatalf("%v\n(replay: DOCKERVISOR_CRASH_SEED=%d DOCKERVISOR_CRASH_OPS=%s DOCKERVISOR_CRASH_TIME_SCALE=%d)", err, seed, strings.Join(ops, ","), crashTimeScale())
					}
					if run.killed {
						left.Add(-1)
						killed.Add(1)
						byOp[k].Add(1)
					}
					if i > 6*kills {
						t.Fatalf("%d trials and too few kills: is crashProfile right? (last: %s)", i, c)
					}
				}
			})
		}
	})
	var per []string
	for k, op := range ops {
		per = append(per, fmt.Sprintf("%s %d", op, byOp[k].Load()))
	}
	t.Logf("%d kills in %d trials, %d trials recovered clean, in %v: %s", killed.Load(), trials.Load(), clean.Load(), time.Since(began).Round(time.Second), strings.Join(per, ", "))
}
