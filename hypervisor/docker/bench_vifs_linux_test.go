package docker

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/dockervisor/dockervisor/hypervisor"
	"github.com/dockervisor/dockervisor/internal/testenv"
	"github.com/dockervisor/dockervisor/network"
)

func medianOf(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

// BenchmarkSpawnVIF compares Spawn of an instance with one Linux-bridge
// VIF (plug, start, attach in the post-start step) against Spawn without
// networking on a Driver without a VIF driver, alternating the two in each
// iteration (Destroy is not timed). It reports both medians and the time
// the VIF adds (target: at most 5 ms), and the median of AttachInterface
// (plug and attach of one VIF into the running instance, through the
// backend) and of DetachInterface. An instance with a VIF stays on the
// bridge throughout, as on a host with other instances, so the bridge is
// not created and deleted in every iteration. Spawn itself varies by tens
// of milliseconds with the engine's load, so it also reports the median
// time of Spawn's own VIF steps (plug-vifs, attach-vifs), timed inside
// Spawn: the cost the VIF adds without the engine's noise. Those steps
// include the write of the instance's record, which Spawn without VIFs
// does as well (in its start step, skipped with VIFs as the record is
// written already); its median is reported as record-write-µs.
func BenchmarkSpawnVIF(b *testing.B) {
	cli := testenv.MustHaveDocker(b)
	img := testenv.BusyboxImage(b)
	plain := benchDriver(b, cli, testenv.UniqueName("b"))
	lab := newBridgeLab(b)
	uniq := testenv.UniqueName("b")
	withVIF, err := New(WithLabelPrefix("io.dockervisor."+uniq+"."), WithNamePrefix("dv-"+uniq+"-"), WithStateDir(b.TempDir()), WithVIFDriver(lab.drv))
	if err != nil {
		b.Fatal(err)
	}
	ctx := b.Context()
	cmd := []string{"sleep", "3600"}
	spec := func(id string, vifs ...network.VIF) hypervisor.InstanceSpec {
		return hypervisor.InstanceSpec{ID: id, Name: "vm", Image: img, Command: cmd, VCPUs: 1, MemoryMB: 64, VIFs: vifs}
	}
	must := func(err error) {
		if err != nil {
			b.Fatal(err)
		}
	}
	b.Cleanup(func() {
		ctx := context.WithoutCancel(ctx)
		list, _ := withVIF.List(ctx, hypervisor.ListOptions{})
		for _, inst := range list {
			_ = withVIF.Destroy(ctx, inst.ID)
		}
		withVIF.Close()
	})
	_, err = withVIF.Spawn(ctx, spec("anchor", lab.vif(1, 250)))
	must(err)

	// The VIF steps inside Spawn, timed by the step hook: plug-vifs runs
	// until start, attach-vifs until Spawn returns.
	var stepAt = map[string]time.Time{}
	withVIF.stepHook = func(step string) { stepAt[step] = time.Now() }
	var tPlain, tVIF, tAttach, tDetach, tSteps, tSave []time.Duration
	for i := 0; b.Loop(); i++ {
		id := fmt.Sprintf("i%d", i)
		v := lab.vif(1, 2+i%200)
		runs := []func(){
			func() {
				t0 := time.Now()
				_, err := plain.Spawn(ctx, spec(id))
				tPlain = append(tPlain, time.Since(t0))
				must(err)
			},
			func() {
				t0 := time.Now()
				_, err := withVIF.Spawn(ctx, spec(id, v))
				end := time.Now()
				tVIF = append(tVIF, end.Sub(t0))
				must(err)
				tSteps = append(tSteps, stepAt[StepStart].Sub(stepAt[StepPlugVIFs])+end.Sub(stepAt[StepAttachVIFs]))
				v2 := lab.vif(2, 2+i%200)
				t0 = time.Now()
				must(withVIF.AttachInterface(ctx, id, v2))
				tAttach = append(tAttach, time.Since(t0))
				t0 = time.Now()
				must(withVIF.DetachInterface(ctx, id, v2))
				tDetach = append(tDetach, time.Since(t0))
			},
		}
		if i%2 == 1 {
			runs[0], runs[1] = runs[1], runs[0]
		}
		for _, r := range runs {
			r()
		}
		// One record write, which Spawn does with or without VIFs (with
		// VIFs in plug-vifs, before the plug; without, in the start step).
		t0 := time.Now()
		must(plain.state.save("probe", instanceRecord{VIFs: []vifRecord{{VIF: v, Device: "eth0"}}}))
		tSave = append(tSave, time.Since(t0))
		must(plain.Destroy(ctx, id))
		must(withVIF.Destroy(ctx, id))
	}
	mp, mv := medianOf(tPlain), medianOf(tVIF)
	b.ReportMetric(float64(mp.Microseconds()), "spawn-µs")
	b.ReportMetric(float64(mv.Microseconds()), "spawn-1vif-µs")
	b.ReportMetric(float64((mv - mp).Microseconds()), "vif-added-µs")
	b.ReportMetric(float64(medianOf(tSteps).Microseconds()), "vif-steps-µs")
	b.ReportMetric(float64(medianOf(tSave).Microseconds()), "record-write-µs")
	b.ReportMetric(float64(medianOf(tAttach).Microseconds()), "attach-iface-µs")
	b.ReportMetric(float64(medianOf(tDetach).Microseconds()), "detach-iface-µs")
}
