package docker

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/moby/moby/client"

	"github.com/dockervisor/dockervisor/hypervisor"
	"github.com/dockervisor/dockervisor/image/localdir"
	"github.com/dockervisor/dockervisor/network"
	"github.com/dockervisor/dockervisor/network/linuxbridge"
)

// The crash tests run the agent as a real child process: the test binary
// started again with crashAgentEnv set runs one job (an operation of a
// Driver) read as JSON from its stdin, and is killed with SIGKILL in the
// middle: by the parent after a delay, or by itself at a chosen engine or
// VIF driver call or step of the operation (the same signal, at a point
// that a seed picks exactly). It prints "GO" before the operation and
// "DONE <calls> <error>" after it, if it lives.

// crashAgentEnv makes the test binary run a crash job instead of tests.
const crashAgentEnv = "DOCKERVISOR_CRASH_AGENT"

// crashSetup is what the agent and the test's recovering Drivers share:
// prefixes, state directory, VIF driver and snapshot store.
type crashSetup struct {
	LabelPrefix string `json:"label_prefix"`
	NamePrefix  string `json:"name_prefix"`
	StateDir    string `json:"state_dir"`
	StoreDir    string `json:"store_dir"`
	HostNetNS   string `json:"host_netns"`
}

// crashJob is one operation of the agent.
type crashJob struct {
	Setup  crashSetup               `json:"setup"`
	Op     string                   `json:"op"`
	ID     string                   `json:"id"`
	Spec   *hypervisor.InstanceSpec `json:"spec,omitempty"`
	Image  string                   `json:"image,omitempty"`
	Flavor hypervisor.Flavor        `json:"flavor"`
	VIF    *network.VIF             `json:"vif,omitempty"`
	Meta   map[string]string        `json:"meta,omitempty"`
	Kill   killPlan                 `json:"kill"`
}

// killPlan is where the agent kills itself. Mode "call": at the Call-th
// call (from 0) to the engine or the VIF driver after GO, or, with
// Method, at the Call-th call of that method; When is "before" it is
// sent, "after" it returned, or "during": DelayUS µs after it was sent.
// Mode "step": at the Call-th step named Step (see Driver.step). Mode
// "timer" or "": the parent kills.
type killPlan struct {
	Mode    string `json:"mode,omitempty"`
	Method  string `json:"method,omitempty"`
	Step    string `json:"step,omitempty"`
	Call    int    `json:"call"`
	When    string `json:"when,omitempty"`
	DelayUS int    `json:"delay_us,omitempty"`
	DelayMS int    `json:"delay_ms,omitempty"` // mode timer: after GO
}

func (p killPlan) String() string {
	switch p.Mode {
	case "call":
		m := "call"
		if p.Method != "" {
			m = p.Method
		}
		s := fmt.Sprintf("%s #%d %s", m, p.Call, p.When)
		if p.When == "during" {
			s += fmt.Sprintf(" +%dµs", p.DelayUS)
		}
		return s
	case "step":
		return fmt.Sprintf("step %s #%d", p.Step, p.Call)
	}
	return fmt.Sprintf("timer %dms", p.DelayMS)
}

// crashOptions are the Driver options of a crash setup.
func (s crashSetup) options() ([]Option, func(), error) {
	vifs, err := linuxbridge.New(linuxbridge.WithHostNetNS(s.HostNetNS))
	if err != nil {
		return nil, nil, err
	}
	store, err := localdir.New(s.StoreDir, localdir.WithoutSync())
	if err != nil {
		vifs.Close()
		return nil, nil, err
	}
	return []Option{
		WithLabelPrefix(s.LabelPrefix),
		WithNamePrefix(s.NamePrefix),
		WithStateDir(s.StateDir),
		WithStopTimeout(2 * time.Second),
		WithVIFDriver(vifs),
		WithSnapshotStore(store),
	}, func() { vifs.Close() }, nil
}

// killer counts the agent's calls once armed and kills the process at
// the planned one.
type killer struct {
	mu     sync.Mutex
	armed  bool
	plan   killPlan
	n      int            // calls since armed
	byName map[string]int // calls of each method, or steps of each name
}

func (k *killer) die() {
	_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
	select {}
}

// before notes a call of method and returns what to run after it.
func (k *killer) before(method string) (after func()) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if !k.armed || k.plan.Mode != "call" {
		return func() {}
	}
	i := k.n
	k.n++
	if k.plan.Method != "" {
		i = k.byName[method]
		k.byName[method]++
		if method != k.plan.Method {
			return func() {}
		}
	}
	if i != k.plan.Call {
		return func() {}
	}
	switch k.plan.When {
	case "before":
		k.die()
	case "during":
		go func() {
			time.Sleep(time.Duration(k.plan.DelayUS) * time.Microsecond)
			k.die()
		}()
	case "after":
		return k.die
	}
	return func() {}
}

// step notes a step of the Driver.
func (k *killer) step(name string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if !k.armed || k.plan.Mode != "step" || name != k.plan.Step {
		return
	}
	i := k.byName[name]
	k.byName[name]++
	if i == k.plan.Call {
		k.die()
	}
}

func (k *killer) calls() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.n
}

// crashAgentMain runs the job on stdin and returns the exit code.
func crashAgentMain() int {
	var job crashJob
	if err := json.NewDecoder(os.Stdin).Decode(&job); err != nil {
		fmt.Fprintln(os.Stderr, "crash agent: job:", err)
		return 2
	}
	opts, closeVIFs, err := job.Setup.options()
	if err != nil {
		fmt.Fprintln(os.Stderr, "crash agent:", err)
		return 2
	}
	defer closeVIFs()
	k := &killer{plan: job.Kill, byName: map[string]int{}}
	vd := killVIFs{VIFDriver: nil, k: k}
	d, err := New(opts...)
	if err != nil {
		fmt.Fprintln(os.Stderr, "crash agent:", err)
		return 2
	}
	vd.VIFDriver = d.opts.vifs
	d.opts.vifs = vd
	d.api = killAPI{APIClient: d.api, k: k}
	d.stepHook = k.step
	ctx := context.Background()
	if _, err := d.engine(ctx); err != nil { // connect before GO
		fmt.Fprintln(os.Stderr, "crash agent:", err)
		return 2
	}
	out := bufio.NewWriter(os.Stdout)
	fmt.Fprintln(out, "GO")
	out.Flush()
	k.mu.Lock()
	k.armed = true
	k.mu.Unlock()
	err = job.run(ctx, d)
	fmt.Fprintf(out, "DONE %d %v\n", k.calls(), err)
	out.Flush()
	return 0
}

// run runs the job's operation on d.
func (job crashJob) run(ctx context.Context, d *Driver) error {
	var err error
	switch job.Op {
	case "spawn":
		_, err = d.Spawn(ctx, *job.Spec)
	case "create-only":
		_, err = d.SpawnWithOptions(ctx, *job.Spec, hypervisor.SpawnOptions{CreateOnly: true})
	case "power-on":
		err = d.PowerOn(ctx, job.ID)
	case "power-off":
		err = d.PowerOff(ctx, job.ID, hypervisor.StopOptions{})
	case "reboot-soft":
		err = d.Reboot(ctx, job.ID, hypervisor.RebootOptions{})
	case "reboot-hard":
		err = d.Reboot(ctx, job.ID, hypervisor.RebootOptions{Hard: true})
	case "soft-delete":
		err = d.SoftDelete(ctx, job.ID)
	case "restore":
		err = d.Restore(ctx, job.ID)
	case "rebuild":
		err = d.Rebuild(ctx, job.ID, job.Image)
	case "resize":
		err = d.Resize(ctx, job.ID, job.Flavor)
	case "snapshot":
		_, err = d.Snapshot(ctx, job.ID, hypervisor.SnapshotRequest{Name: "crash test"})
	case "attach":
		err = d.AttachInterface(ctx, job.ID, *job.VIF)
	case "detach":
		err = d.DetachInterface(ctx, job.ID, *job.VIF)
	case "update-metadata":
		err = d.UpdateMetadata(ctx, job.ID, job.Meta)
	case "destroy":
		err = d.Destroy(ctx, job.ID)
	default:
		err = fmt.Errorf("unknown operation %q", job.Op)
	}
	return err
}

// killVIFs is the VIF driver, counted by the killer.
type killVIFs struct {
	network.VIFDriver
	k *killer
}

func (v killVIFs) Plug(ctx context.Context, id string, vif network.VIF) error {
	defer v.k.before("Plug")()
	return v.VIFDriver.Plug(ctx, id, vif)
}

func (v killVIFs) Attach(ctx context.Context, id string, vif network.VIF, t network.Target) error {
	defer v.k.before("Attach")()
	return v.VIFDriver.Attach(ctx, id, vif, t)
}

func (v killVIFs) Detach(ctx context.Context, id string, vif network.VIF, t network.Target) error {
	defer v.k.before("Detach")()
	return v.VIFDriver.Detach(ctx, id, vif, t)
}

func (v killVIFs) Unplug(ctx context.Context, id string, vif network.VIF) error {
	defer v.k.before("Unplug")()
	return v.VIFDriver.Unplug(ctx, id, vif)
}

// killAPI is the engine client, counted by the killer: every call that
// changes or reads an instance.
type killAPI struct {
	APIClient
	k *killer
}

func (a killAPI) ContainerCreate(ctx context.Context, o client.ContainerCreateOptions) (client.ContainerCreateResult, error) {
	defer a.k.before("ContainerCreate")()
	return a.APIClient.ContainerCreate(ctx, o)
}

func (a killAPI) ContainerInspect(ctx context.Context, id string, o client.ContainerInspectOptions) (client.ContainerInspectResult, error) {
	defer a.k.before("ContainerInspect")()
	return a.APIClient.ContainerInspect(ctx, id, o)
}

func (a killAPI) ContainerList(ctx context.Context, o client.ContainerListOptions) (client.ContainerListResult, error) {
	defer a.k.before("ContainerList")()
	return a.APIClient.ContainerList(ctx, o)
}

func (a killAPI) ContainerStart(ctx context.Context, id string, o client.ContainerStartOptions) (client.ContainerStartResult, error) {
	defer a.k.before("ContainerStart")()
	return a.APIClient.ContainerStart(ctx, id, o)
}

func (a killAPI) ContainerStop(ctx context.Context, id string, o client.ContainerStopOptions) (client.ContainerStopResult, error) {
	defer a.k.before("ContainerStop")()
	return a.APIClient.ContainerStop(ctx, id, o)
}

func (a killAPI) ContainerKill(ctx context.Context, id string, o client.ContainerKillOptions) (client.ContainerKillResult, error) {
	defer a.k.before("ContainerKill")()
	return a.APIClient.ContainerKill(ctx, id, o)
}

func (a killAPI) ContainerRemove(ctx context.Context, id string, o client.ContainerRemoveOptions) (client.ContainerRemoveResult, error) {
	defer a.k.before("ContainerRemove")()
	return a.APIClient.ContainerRemove(ctx, id, o)
}

func (a killAPI) ContainerPause(ctx context.Context, id string, o client.ContainerPauseOptions) (client.ContainerPauseResult, error) {
	defer a.k.before("ContainerPause")()
	return a.APIClient.ContainerPause(ctx, id, o)
}

func (a killAPI) ContainerUnpause(ctx context.Context, id string, o client.ContainerUnpauseOptions) (client.ContainerUnpauseResult, error) {
	defer a.k.before("ContainerUnpause")()
	return a.APIClient.ContainerUnpause(ctx, id, o)
}

func (a killAPI) ContainerWait(ctx context.Context, id string, o client.ContainerWaitOptions) client.ContainerWaitResult {
	defer a.k.before("ContainerWait")()
	return a.APIClient.ContainerWait(ctx, id, o)
}

func (a killAPI) ContainerUpdate(ctx context.Context, id string, o client.ContainerUpdateOptions) (client.ContainerUpdateResult, error) {
	defer a.k.before("ContainerUpdate")()
	return a.APIClient.ContainerUpdate(ctx, id, o)
}

func (a killAPI) ContainerCommit(ctx context.Context, id string, o client.ContainerCommitOptions) (client.ContainerCommitResult, error) {
	defer a.k.before("ContainerCommit")()
	return a.APIClient.ContainerCommit(ctx, id, o)
}

func (a killAPI) ContainerRename(ctx context.Context, id string, o client.ContainerRenameOptions) (client.ContainerRenameResult, error) {
	defer a.k.before("ContainerRename")()
	return a.APIClient.ContainerRename(ctx, id, o)
}

func (a killAPI) ImageSave(ctx context.Context, refs []string, o ...client.ImageSaveOption) (client.ImageSaveResult, error) {
	defer a.k.before("ImageSave")()
	return a.APIClient.ImageSave(ctx, refs, o...)
}

func (a killAPI) ImageInspect(ctx context.Context, id string, o ...client.ImageInspectOption) (client.ImageInspectResult, error) {
	defer a.k.before("ImageInspect")()
	return a.APIClient.ImageInspect(ctx, id, o...)
}

func (a killAPI) ImageList(ctx context.Context, o client.ImageListOptions) (client.ImageListResult, error) {
	defer a.k.before("ImageList")()
	return a.APIClient.ImageList(ctx, o)
}

func (a killAPI) ImageRemove(ctx context.Context, ref string, o client.ImageRemoveOptions) (client.ImageRemoveResult, error) {
	defer a.k.before("ImageRemove")()
	return a.APIClient.ImageRemove(ctx, ref, o)
}

func (a killAPI) ImageLoad(ctx context.Context, r io.Reader, o ...client.ImageLoadOption) (client.ImageLoadResult, error) {
	defer a.k.before("ImageLoad")()
	return a.APIClient.ImageLoad(ctx, r, o...)
}
