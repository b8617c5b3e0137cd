package docker

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/dockervisor/dockervisor/hypervisor"
	"github.com/dockervisor/dockervisor/image"
	"github.com/dockervisor/dockervisor/image/localdir"
	"github.com/dockervisor/dockervisor/internal/testenv"
	"github.com/dockervisor/dockervisor/network"
	"github.com/dockervisor/dockervisor/network/networktest"
	"github.com/dockervisor/dockervisor/network/nldump"
	"github.com/dockervisor/dockervisor/snapshot"
)

// crashWorld is one agent's world in a crash test: its prefixes, state
// directory, snapshot store and private host network namespace (where its
// Linux bridges live), and the instances it keeps.
type crashWorld struct {
	t      *testing.T
	setup  crashSetup
	cli    *client.Client
	images [2]string // busybox under two references, for rebuilds
	net    int       // second octet of the world's subnets
	seq    atomic.Int32
	ids    map[string]bool // instances the agent knows (its database)
	// took sums the time of each phase of the trials: prepare, agent,
	// recover, check.
	took [4]time.Duration
	// state, if set, is the state prepare brings the target to, instead
	// of one drawn from the seed.
	state hypervisor.State
}

// worldSeq tells worlds apart within the process.
var worldSeq atomic.Int32

func newCrashWorld(t *testing.T, images [2]string) *crashWorld {
	t.Helper()
	cli := testenv.MustHaveDocker(t)
	host := testenv.NewHostNetns(t)
	uniq := testenv.UniqueName("c")
	dir := t.TempDir()
	w := &crashWorld{
		t:   t,
		cli: cli,
		setup: crashSetup{
			LabelPrefix: "io.dockervisor." + uniq + ".",
			NamePrefix:  "dv-" + uniq + "-",
			StateDir:    filepath.Join(dir, "state"),
			StoreDir:    filepath.Join(dir, "store"),
			HostNetNS:   host.Path,
		},
		images: images,
		net:    100 + int(worldSeq.Add(1)%150),
		ids:    map[string]bool{},
	}
	t.Cleanup(w.teardown)
	return w
}

// driver returns a new Driver of the world, as an agent's restart makes
// one, and the function that closes it and its VIF driver (idempotent;
// it also runs when the test ends).
func (w *crashWorld) driver() (*Driver, func()) {
	w.t.Helper()
	opts, closeVIFs, err := w.setup.options()
	require.NoError(w.t, err)
	d, err := New(opts...)
	require.NoError(w.t, err)
	var once sync.Once
	closeAll := func() {
		once.Do(func() {
			d.Close()
			closeVIFs()
		})
	}
	w.t.Cleanup(closeAll)
	return d, closeAll
}

// newID returns a new instance ID of the world.
func (w *crashWorld) newID() string {
	return fmt.Sprintf("vm%03d", w.seq.Add(1))
}

// newVIF returns a VIF on a bridge of its own (one per VIF, so that no
// VIF's unplug takes another's bridge).
func (w *crashWorld) newVIF() network.VIF {
	n := int(w.seq.Add(1))
	return network.VIF{
		ID:      networktest.RandomPortID(),
		Address: network.MAC{0x02, 0xcc, byte(w.net), byte(n >> 8), byte(n), 0x01},
		Type:    network.VIFTypeBridge,
		Bridge:  fmt.Sprintf("brc%d-%d", w.net, n),
		MTU:     1400,
		Subnets: []network.Subnet{{
			CIDR:    netip.MustParsePrefix(fmt.Sprintf("10.%d.%d.0/24", w.net, n%250)),
			Gateway: netip.MustParseAddr(fmt.Sprintf("10.%d.%d.1", w.net, n%250)),
			IPs:     []netip.Addr{netip.MustParseAddr(fmt.Sprintf("10.%d.%d.10", w.net, n%250))},
		}},
	}
}

func (w *crashWorld) spec(id string, vifs int) hypervisor.InstanceSpec {
	s := hypervisor.InstanceSpec{ID: id, Image: w.images[0], Command: sleeper, VCPUs: 1, MemoryMB: 64, Metadata: map[string]string{"k": "0"}}
	for range vifs {
		s.VIFs = append(s.VIFs, w.newVIF())
	}
	return s
}

// known returns the instances the agent knows.
func (w *crashWorld) known() []string { return slices.Sorted(maps.Keys(w.ids)) }

// agentRun is how one run of the agent ended.
type agentRun struct {
	killed bool   // by SIGKILL, before it finished
	calls  int    // calls it made, if it finished
	err    string // the operation's error, if it finished
	took   time.Duration
	stderr string
}

// runAgent runs job in a child agent and waits for its end; with a timer
// plan it kills the agent that long after GO.
func (w *crashWorld) runAgent(ctx context.Context, job crashJob) (agentRun, error) {
	job.Setup = w.setup
	in, err := json.Marshal(job)
	if err != nil {
		return agentRun{}, err
	}
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashAgentEnv+"=1")
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return agentRun{}, err
	}
	if err := cmd.Start(); err != nil {
		return agentRun{}, err
	}
	sc := bufio.NewScanner(stdout)
	var run agentRun
	var began time.Time
	var timer *time.Timer
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "GO":
			began = time.Now()
			if job.Kill.Mode == "" || job.Kill.Mode == "timer" {
				timer = time.AfterFunc(time.Duration(job.Kill.DelayMS)*time.Millisecond, func() { _ = cmd.Process.Kill() })
			}
		case strings.HasPrefix(line, "DONE "):
			run.took = time.Since(began)
			f := strings.SplitN(line, " ", 3)
			_, _ = fmt.Sscan(f[1], &run.calls)
			if len(f) > 2 && f[2] != "<nil>" {
				run.err = f[2]
			}
		}
	}
	if timer != nil {
		timer.Stop()
	}
	werr := cmd.Wait()
	run.stderr = stderr.String()
	if st, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && st.Signaled() && st.Signal() == syscall.SIGKILL {
		run.killed = true
		return run, nil
	}
	if werr != nil {
		return run, fmt.Errorf("agent: %w: %s", werr, run.stderr)
	}
	if began.IsZero() {
		return run, fmt.Errorf("agent never began: %s", run.stderr)
	}
	return run, nil
}

// recoverAgent is the documented recovery after a crash: a new Driver,
// Reconcile with the remove policy (the agent's instances known), Resume.
func (w *crashWorld) recoverAgent(ctx context.Context) (*Driver, func(), hypervisor.ReconcileReport, hypervisor.ResumeReport, error) {
	d, closeDriver := w.driver()
	rep, err := d.Reconcile(ctx, hypervisor.ReconcileOptions{Known: w.known(), Policy: hypervisor.ReconcileRemove})
	if err != nil {
		return d, closeDriver, rep, hypervisor.ResumeReport{}, fmt.Errorf("reconcile: %w", err)
	}
	if len(rep.Failed) > 0 {
		return d, closeDriver, rep, hypervisor.ResumeReport{}, fmt.Errorf("reconcile failed on %v", rep.Failed)
	}
	res, err := d.Resume(ctx, hypervisor.ResumeOptions{})
	if err != nil {
		return d, closeDriver, rep, res, fmt.Errorf("resume: %w", err)
	}
	if len(res.Failed) > 0 {
		return d, closeDriver, rep, res, fmt.Errorf("resume failed on %v", res.Failed)
	}
	return d, closeDriver, rep, res, nil
}

// instView is what the checks compare of an instance.
type instView struct {
	present bool
	state   hypervisor.State
	image   string
	memMB   int64
	vifs    string // port IDs in device order
	meta    string
	snaps   int // its snapshots in the store
}

func (v instView) String() string {
	if !v.present {
		return "absent"
	}
	return fmt.Sprintf("%s image=%s mem=%d vifs=[%s] meta=%s snaps=%d", v.state, v.image, v.memMB, v.vifs, v.meta, v.snaps)
}

// portIDs is the view of a new instance's VIFs: device=port, on eth0,
// eth1… in order.
func portIDs(vifs []network.VIF) string {
	recs := make([]vifRecord, len(vifs))
	for i, v := range vifs {
		recs[i] = vifRecord{VIF: v, Device: "eth" + strconv.Itoa(i)}
	}
	return vifsView(recs)
}

// vifsView is the view of recorded VIFs: device=port, in device order.
func vifsView(recs []vifRecord) string {
	ids := make([]string, len(recs))
	for i, r := range recs {
		ids[i] = r.Device + "=" + r.VIF.ID
	}
	return strings.Join(ids, ",")
}

// parseVIFsView reads a vifsView back.
func parseVIFsView(view string) []vifRecord {
	var recs []vifRecord
	for _, f := range strings.Split(view, ",") {
		if dev, id, ok := strings.Cut(f, "="); ok {
			recs = append(recs, vifRecord{VIF: network.VIF{ID: id}, Device: dev})
		}
	}
	return recs
}

// withVIF is the view after port id is attached: on the first free ethN.
func withVIF(view, id string) string {
	recs := parseVIFsView(view)
	recs = append(recs, vifRecord{VIF: network.VIF{ID: id}, Device: nextDevice(recs)})
	sortVIFs(recs)
	return vifsView(recs)
}

// withoutVIF is the view after port id is detached.
func withoutVIF(view, id string) string {
	return vifsView(slices.DeleteFunc(parseVIFsView(view), func(r vifRecord) bool { return r.VIF.ID == id }))
}

// view reads instance id through d (List, which reads no statistics, and
// the snapshot store).
func (w *crashWorld) view(ctx context.Context, d *Driver, id string) (instView, error) {
	list, err := d.List(ctx, hypervisor.ListOptions{})
	if err != nil {
		return instView{}, err
	}
	i := slices.IndexFunc(list, func(inst hypervisor.Instance) bool { return inst.ID == id })
	if i < 0 {
		return instView{}, nil
	}
	info := list[i]
	meta, _ := json.Marshal(info.Metadata)
	v := instView{present: true, state: info.State, image: info.Image, memMB: info.MemoryMB, meta: string(meta)}
	// The VIFs with their devices, from the record; the instance must
	// list them in the same order.
	rec, err := d.state.load(id)
	if err != nil {
		return v, err
	}
	v.vifs = vifsView(rec.VIFs)
	if got := recordedVIFs(rec.VIFs); !slices.EqualFunc(got, info.VIFs, func(a, b network.VIF) bool { return a.ID == b.ID }) {
		v.vifs += fmt.Sprintf(" (instance lists %d VIFs in another order)", len(info.VIFs))
	}
	store, err := localdir.New(w.setup.StoreDir, localdir.WithoutSync())
	if err != nil {
		return v, err
	}
	snaps, err := snapshot.List(ctx, store, id)
	v.snaps = len(snaps)
	return v, err
}

// checkWorld checks that nothing is leaked and nothing contradicts: the
// engine's containers and committed images, the state directory, the
// snapshot store, the host namespace's links and each instance's guest
// devices, records and engine limits agree with the instances d reports.
func (w *crashWorld) checkWorld(ctx context.Context, d *Driver) error {
	var errs []error
	fail := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	list, err := d.List(ctx, hypervisor.ListOptions{})
	if err != nil {
		return err
	}
	live := map[string]hypervisor.Instance{}
	for _, inst := range list {
		live[inst.ID] = inst
		if !w.ids[inst.ID] {
			fail("instance %s is not the agent's", inst.ID)
		}
	}

	// Containers: exactly one per instance, under its name, whatever
	// names this driver's label appears under.
	cs, err := w.cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: make(client.Filters).Add("label", d.label(labelInstanceID))})
	if err != nil {
		return err
	}
	for _, c := range cs.Items {
		id := c.Labels[d.label(labelInstanceID)]
		if _, ok := live[id]; !ok || !slices.Contains(c.Names, "/"+d.containerName(id)) {
			fail("container %v (%s, instance %s) is no instance's", c.Names, c.State, id)
		}
		if c.State == container.StateRemoving || c.State == container.StateDead {
			fail("container %v is %s", c.Names, c.State)
		}
	}
	if len(cs.Items) != len(live) {
		fail("%d containers for %d instances", len(cs.Items), len(live))
	}

	// Committed images: none of this driver's.
	imgs, err := w.cli.ImageList(ctx, client.ImageListOptions{Filters: make(client.Filters).Add("reference", snapshot.CommitRepository+":*")})
	if err != nil {
		return err
	}
	for _, img := range imgs.Items {
		if refs := d.ownCommitRefs(img.RepoTags, img.Labels); len(refs) > 0 || img.Labels[d.label(labelInstanceID)] != "" {
			fail("committed image %v left on the engine", img.RepoTags)
		}
	}

	// Records, guest files, temporary files.
	for id, inst := range live {
		rec, ok, err := d.state.instances.Load(id)
		switch {
		case err != nil:
			fail("record of %s: %v", id, err)
		case !ok:
			fail("instance %s has no record", id)
		case rec.Pending != nil:
			fail("record of %s still has the journal of %s", id, rec.Pending.Op)
		case rec.Spawning:
			fail("record of %s still says spawning", id)
		case inst.State == hypervisor.StateRunning && !rec.intendedRunning(),
			inst.State == hypervisor.StatePaused && !rec.intendedRunning(),
			inst.State == hypervisor.StateShutdown && rec.intendedRunning():
			fail("%s is %s but its record's intent is %q", id, inst.State, rec.Intent)
		}
		if inst.State == hypervisor.StateCrashed {
			fail("%s is crashed", id)
		}
	}
	scope := d.state.scopeDir()
	err = filepath.WalkDir(w.setup.StateDir, func(path string, de fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if de.IsDir() {
			if path != w.setup.StateDir && strings.HasPrefix(de.Name(), ".") {
				fail("temporary directory %s left", path)
				return filepath.SkipDir
			}
			return nil
		}
		rel, _ := filepath.Rel(scope, path)
		parts := strings.Split(rel, string(filepath.Separator))
		name := de.Name()
		switch {
		case strings.HasPrefix(name, "."):
			fail("temporary file %s left", path)
		case rel == "events.jsonl", rel == "ops.jsonl", rel == "ops.lock":
		case len(parts) == 2 && (parts[0] == "instances" || parts[0] == "boot") && strings.HasSuffix(name, ".json"):
			if _, ok := live[strings.TrimSuffix(name, ".json")]; !ok {
				fail("%s left of an instance that is gone", path)
			}
		case len(parts) == 2 && parts[0] == "resolv" && (strings.HasSuffix(name, ".conf") || strings.HasSuffix(name, ".hosts")):
			if _, ok := live[strings.TrimSuffix(strings.TrimSuffix(name, ".conf"), ".hosts")]; !ok {
				fail("%s left of an instance that is gone", path)
			}
		case len(parts) > 2 && parts[0] == "configdrive":
			if _, ok := live[parts[1]]; !ok {
				fail("%s left of an instance that is gone", path)
			}
		default:
			fail("unexpected file %s", path)
		}
		return nil
	})
	if err != nil {
		fail("walk the state directory: %v", err)
	}

	// The snapshot store: whole images only.
	des, err := os.ReadDir(w.setup.StoreDir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	names := map[string]bool{}
	for _, de := range des {
		names[de.Name()] = true
	}
	for n := range names {
		switch {
		case strings.HasPrefix(n, "."):
			fail("temporary file %s left in the snapshot store", n)
		case strings.HasSuffix(n, ".tar") && !names[strings.TrimSuffix(n, ".tar")+".json"]:
			fail("snapshot data %s without its metadata", n)
		case strings.HasSuffix(n, ".json") && !names[strings.TrimSuffix(n, ".json")+".tar"]:
			fail("snapshot metadata %s without its data", n)
		}
	}

	// Host devices: each recorded VIF's bridge, and a tap for each VIF of
	// an instance with a process; nothing else.
	want := map[string]bool{"lo": true}
	guest := map[string][]network.VIF{}
	for id, inst := range live {
		rec, _, _ := d.state.instances.Load(id)
		for _, r := range rec.VIFs {
			want[r.VIF.Bridge] = true
			if inst.State == hypervisor.StateRunning || inst.State == hypervisor.StatePaused {
				dev, err := network.DeviceNames(r.VIF.ID)
				if err != nil {
					return err
				}
				want[dev.Tap] = true
				guest[id] = append(guest[id], r.VIF)
			}
		}
		if portIDs(recordedVIFs(rec.VIFs)) != portIDs(inst.VIFs) {
			fail("%s lists VIFs [%s], its record [%s]", id, portIDs(inst.VIFs), portIDs(recordedVIFs(rec.VIFs)))
		}
	}
	// The kernel tears a stopped instance's namespace down in the
	// background, and the taps in it with it (seen to take seconds on a
	// busy machine): the tap of a recorded VIF of a stopped instance is
	// the kernel's to remove, not a leak (teardown checks that it goes).
	owned := map[string]bool{}
	for id := range live {
		rec, _, _ := d.state.instances.Load(id)
		for _, r := range rec.VIFs {
			if dev, err := network.DeviceNames(r.VIF.ID); err == nil {
				owned[dev.Tap] = true
			}
		}
	}
	links, err := linksIn(w.setup.HostNetNS)
	if err != nil {
		return err
	}
	for name := range links {
		if !want[name] && !owned[name] {
			var who []string
			for id, inst := range live {
				rec, _, _ := d.state.instances.Load(id)
				for _, r := range rec.VIFs {
					dev, _ := network.DeviceNames(r.VIF.ID)
					who = append(who, fmt.Sprintf("%s(%s):%s/%s", id, inst.State, r.Device, dev.Tap))
				}
			}
			var ctrs []string
			for id := range live {
				if res, err := w.cli.ContainerInspect(ctx, d.containerName(id), client.ContainerInspectOptions{}); err == nil {
					c := res.Container
					ctrs = append(ctrs, fmt.Sprintf("%s: %s pid %d sandbox %s finished %s", id, c.State.Status, c.State.Pid, c.NetworkSettings.SandboxKey, c.State.FinishedAt))
				}
			}
			dbg, _ := exec.Command("sh", "-c", "nsenter --net="+w.setup.HostNetNS+" ip -o link show "+name+"; grep nsfs /proc/mounts; ls -l /proc/[0-9]*/fd 2>/dev/null | grep -a netns; for p in /proc/[0-9]*; do readlink $p/ns/net; done | sort | uniq -c | sort -rn | head -3").CombinedOutput()
			dbg = append([]byte(strings.Join(ctrs, "\n")+"\n"), dbg...)
			fail("host link %s left (instances' VIFs: %v)\n%s", name, who, dbg)
		}
	}
	for name := range want {
		if _, ok := links[name]; !ok {
			fail("host link %s missing", name)
		}
	}

	// Guest devices and engine limits.
	for id, inst := range live {
		res, err := w.cli.ContainerInspect(ctx, d.containerName(id), client.ContainerInspectOptions{})
		if err != nil {
			fail("inspect %s: %v", id, err)
			continue
		}
		c := res.Container
		if got := c.HostConfig.Memory >> 20; got != inst.MemoryMB {
			fail("%s: the engine limits memory to %d MiB, the driver reports %d", id, got, inst.MemoryMB)
		}
		if c.State == nil || !hasProcess(c.State.Status) {
			continue
		}
		if inst.State != hypervisor.StateRunning && inst.State != hypervisor.StatePaused {
			fail("%s is %s, but the engine runs it (%s)", id, inst.State, c.State.Status)
		}
		in, err := linksIn(netnsPath(c.State.Pid))
		if err != nil {
			fail("links of %s: %v", id, err)
			continue
		}
		vifs := guest[id]
		if len(in) != len(vifs)+1 {
			fail("%s has links %v in its namespace, %d VIFs recorded", id, slices.Sorted(maps.Keys(in)), len(vifs))
		}
		rec, _, _ := d.state.instances.Load(id)
		for _, r := range rec.VIFs {
			if mac, ok := in[r.Device]; !ok || mac != r.VIF.Address.String() {
				fail("%s: %s is %q in the guest, VIF %s has MAC %s", id, r.Device, mac, r.VIF.ID, r.VIF.Address)
			}
		}
	}
	return errors.Join(errs...)
}

// linksIn returns the links of the network namespace at path, by name,
// with their MAC addresses.
func linksIn(path string) (map[string]string, error) {
	ns, err := netns.GetFromPath(path)
	if err != nil {
		return nil, err
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return nil, err
	}
	defer h.Close()
	links, err := nldump.LinkList(h)
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, len(links))
	for _, l := range links {
		out[l.Attrs().Name] = l.Attrs().HardwareAddr.String()
	}
	return out, nil
}

// teardown destroys every instance of the world and checks that nothing
// is left: no container, no committed image, no host link but lo, no
// record or file in the state directory, no temporary file in the store.
func (w *crashWorld) teardown() {
	t := w.t
	ctx := context.WithoutCancel(t.Context())
	d, closeDriver := w.driver()
	defer closeDriver()
	if _, err := d.Reconcile(ctx, hypervisor.ReconcileOptions{Policy: hypervisor.ReconcileRemove}); err != nil {
		t.Errorf("teardown: reconcile: %v", err)
	}
	if err := w.checkWorld(ctx, d); err != nil && !t.Failed() {
		t.Errorf("teardown: %v", err)
	}
	keys, _ := d.state.instances.Keys()
	if len(keys) > 0 {
		t.Errorf("teardown: records left: %v", keys)
	}
	// Every instance is gone: nothing but lo may stay, once the kernel
	// has torn the instances' namespaces down.
	var links map[string]string
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(50 * time.Millisecond) {
		var err error
		links, err = linksIn(w.setup.HostNetNS)
		if err != nil || len(links) == 1 || time.Now().After(deadline) {
			break
		}
	}
	if len(links) > 1 {
		t.Errorf("teardown: host links left: %v", slices.Sorted(maps.Keys(links)))
	}
	store, err := localdir.New(w.setup.StoreDir, localdir.WithoutSync())
	if err == nil {
		ms, _ := store.List(ctx, image.ListOptions{})
		for _, m := range ms {
			_ = store.Delete(ctx, m.ID)
		}
	}
}

// cloneRand returns a generator for one trial's choices.
func trialRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)) }

// TestCrashViewVIFs: the crash world predicts VIF devices as the driver
// assigns them: an attach takes the first free ethN, so after eth0's VIF
// was detached, the next one comes first (a run failed on the model
// appending it).
func TestCrashViewVIFs(t *testing.T) {
	v := portIDs([]network.VIF{{ID: "a"}, {ID: "b"}})
	assert.Equal(t, "eth0=a,eth1=b", v)
	v = withoutVIF(v, "a")
	assert.Equal(t, "eth1=b", v)
	v = withVIF(v, "c")
	assert.Equal(t, "eth0=c,eth1=b", v)
	assert.Equal(t, "eth0=c,eth1=b,eth2=d", withVIF(v, "d"))
	assert.Empty(t, withoutVIF("eth0=c", "c"))
}
