package testenv

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dockervisor/dockervisor/internal/procstat"
	"github.com/dockervisor/dockervisor/network/ovs/ovsrun"
)

// OVSBridge is the name of the integration bridge of a private Open
// vSwitch. It lives in the private network namespace, so it does not clash
// with other test processes.
const OVSBridge = "br-int"

// OVS is a private Open vSwitch (package ovsrun): an ovsdb-server and an
// ovs-vswitchd with their own run directory, and an integration bridge
// [OVSBridge]. The bridge uses the kernel datapath (datapath_type=system)
// where the kernel has the Open vSwitch module (loaded by the harness if
// needed, as the distribution's service does), else the userspace datapath
// (datapath_type=netdev), as on this project's CI kernel. Where
// [KernelFeaturesEnv] requires [FeatureOVSKernelDatapath] (the kernel
// lane), a switch without the kernel datapath fails to start.
//
// ovs-vswitchd runs inside its own network namespace, NetNS. Both
// datapaths open port devices by name in ovs-vswitchd's own namespace (the
// kernel keeps a datapath per namespace), so the host side of the VIFs
// that tests plug on this switch (qvo, tap) must live in NetNS too: tests
// pass NetNS as the VIF drivers' host namespace.
type OVS struct {
	*ovsrun.Switch
	Bridge string // the integration bridge, [OVSBridge]
}

var (
	ovsMu      sync.Mutex
	ovsStopped bool
	ovsStart   = sync.OnceValues(startSharedOVS)
	ovsStop    sync.Once
	ovsSeq     atomic.Int64
)

// MustHaveOVS returns the private Open vSwitch of this test process,
// starting it on the first call; every test of the process shares it, so
// tests use unique port and device names and remove what they plug. It
// skips (or fails in CI) when the Open vSwitch binaries are missing or the
// daemons do not come up, and fails the test when a daemon has died since.
//
// The daemons are started with a parent-death signal, so they die with the
// test binary. Call [StopOVS] from TestMain after m.Run to stop them
// cleanly and remove their namespace and files.
func MustHaveOVS(t testing.TB) *OVS {
	t.Helper()
	MustHaveRoot(t)
	o, err := ovsStart()
	if err != nil {
		Missing(t, "Open vSwitch: %v", err)
	}
	if err := o.Alive(); err != nil {
		t.Fatalf("private Open vSwitch: %v", err)
	}
	return o
}

// StopOVS stops the private Open vSwitch of [MustHaveOVS] if one was
// started: it deletes the integration bridge, stops ovs-vswitchd with
// "exit --cleanup" and ovsdb-server, deletes the namespace and removes the
// run directory. It is idempotent and safe to call when none was started;
// call it from TestMain after m.Run.
func StopOVS() {
	ovsStop.Do(func() {
		ovsMu.Lock()
		ovsStopped = true
		ovsMu.Unlock()
		o, err := ovsStart() // returns at once if started; otherwise refuses to start
		if err != nil || o == nil {
			return
		}
		o.Stop()
	})
}

var errOVSStopped = errors.New("StopOVS was called")

func startSharedOVS() (*OVS, error) {
	ovsMu.Lock()
	stopped := ovsStopped
	ovsMu.Unlock()
	if stopped {
		return nil, errOVSStopped
	}
	return newOVS()
}

// StartOVS starts an extra private Open vSwitch owned by t, like the one of
// [MustHaveOVS] but with its own directory, database and namespace, for
// tests that break it (see [OVS.KillDB]). It is stopped and removed at t's
// cleanup. It skips (or fails in CI) when Open vSwitch is missing.
func StartOVS(t testing.TB) *OVS {
	t.Helper()
	MustHaveRoot(t)
	o, err := newOVS()
	if err != nil {
		Missing(t, "Open vSwitch: %v", err)
	}
	t.Cleanup(o.Stop)
	// Before Stop (cleanups run last first): what the daemons cost, for
	// the kernel lane's account of where its CPU goes.
	t.Cleanup(func() {
		db, vs := o.PIDs()
		t.Logf("private switch %s: CPU of ovsdb-server %s, ovs-vswitchd %s", o.Dir, processCPU(db), processCPU(vs))
	})
	return o
}

// processCPU is the user and system CPU time process pid has used so
// far, from /proc/PID/stat, or "?" when it cannot be read.
func processCPU(pid int) string {
	if pid <= 0 {
		return "?"
	}
	f, err := procstat.Fields(pid)
	if err != nil || len(f) < 15-2 {
		return "?"
	}
	ut, err1 := strconv.ParseUint(f[14-3], 10, 64) // utime
	st, err2 := strconv.ParseUint(f[15-3], 10, 64) // stime
	if err1 != nil || err2 != nil {
		return "?"
	}
	const hz = 100 // USER_HZ, fixed on Linux
	return fmt.Sprintf("%.2fs (user %.2fs)", float64(ut+st)/hz, float64(ut)/hz)
}

// MustVsctl is [OVS.Vsctl] that fails t on error.
func (o *OVS) MustVsctl(t testing.TB, args ...string) string {
	t.Helper()
	out, err := o.Vsctl(context.WithoutCancel(t.Context()), args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Stop deletes the integration bridge, stops both daemons (killing them
// when they do not exit within 5 s), deletes the namespace and removes the
// run directory. It is idempotent.
func (o *OVS) Stop() { _ = o.Switch.Stop(context.Background()) }

// newOVS starts a switch in a namespace of its own with the integration
// bridge.
func newOVS() (*OVS, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	name := fmt.Sprintf("dvovs-%d-%d", os.Getpid(), ovsSeq.Add(1))
	// The kernel datapath where the kernel has it (loaded as the
	// distribution's service would), else the userspace one.
	dp, dpErr := ovsrun.PickDatapath(ctx)
	if dp != ovsrun.DatapathSystem && KernelRequires(FeatureOVSKernelDatapath) {
		return nil, fmt.Errorf("%s requires the Open vSwitch kernel datapath and the kernel has no usable openvswitch module (%v)", KernelFeaturesEnv, dpErr)
	}
	sw, err := ovsrun.Start(ctx, ovsrun.Options{NetNS: name, Datapath: dp})
	if err != nil {
		return nil, err
	}
	o := &OVS{Switch: sw, Bridge: OVSBridge}
	if err := o.AddBridge(ctx, o.Bridge); err != nil {
		o.Stop()
		return nil, err
	}
	return o, nil
}
