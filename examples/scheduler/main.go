// Command scheduler places instances over several Docker engines with
// OpenStack Placement as the shared inventory. Given N engines (a unix
// socket, or TCP with TLS material), it registers each engine's host as a
// resource provider (inventory, traits, a stable node UUID kept in the
// state directory), then places M instances of the given flavors: it asks
// Placement for allocation candidates (at most -candidates of them), picks
// one with a weigher (spread or pack), claims it and spawns on the chosen
// engine. Several schedulers may run at once against the same Placement
// and engines: a claim that loses a race moves on to the next candidate,
// then to fresh candidates, and an instance ID is
// placed exactly once. An engine that stops answering is taken out (its
// provider gets COMPUTE_STATUS_DISABLED, its instances are reported) and
// new work goes elsewhere. It prints where everything went. With -sweep
// it then settles instances that racing schedulers left on two engines
// (Scheduler.Sweep: the copy where the claim is stays), leaving copies
// younger than -sweep-age to placements still in progress.
//
//	scheduler -placement http://127.0.0.1:8778/ -token admin \
//	    -engine a=unix:///run/a/docker.sock \
//	    -engine b=tcp://10.0.0.5:2376,certdir=/etc/docker/b \
//	    -image busybox:1 -count 50 -flavor tiny=1:64 -weigher spread -candidates 50 -cleanup
//
// Without -placement, Placement is found through keystone from the usual
// OS_* variables (OS_AUTH_URL, OS_USERNAME, OS_PASSWORD, …).
// A certdir holds ca.pem, cert.pem and key.pem, as DOCKER_CERT_PATH does.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"maps"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"

	"github.com/dockervisor/dockervisor/hypervisor"
	"github.com/dockervisor/dockervisor/hypervisor/docker"
	"github.com/dockervisor/dockervisor/placement"
)

// engineSpec is one -engine flag: name=host[,certdir=DIR].
type engineSpec struct {
	Name    string
	Host    string
	CertDir string
}

// flavor is one -flavor flag: name=vcpus:memoryMB.
type flavor struct {
	Name     string
	VCPUs    int
	MemoryMB int64
}

// config is the whole run.
type config struct {
	Placement string // endpoint; empty: keystone from OS_* variables
	Token     string
	Engines   []engineSpec
	StateDir  string
	Image     string
	Command   []string
	Count     int
	IDs       []string // instance IDs to place; empty: Count new UUIDs
	Flavors   []flavor
	Weigher   string
	Limit     int // allocation candidates asked for per decision; 0: all
	Parallel  int
	Trait     string  // custom trait on the providers, required by the requests
	CPURatio  float64 // VCPU allocation ratio; 0: placement's default
	Cleanup   bool
	Sweep     bool          // settle instances running on two engines after placing
	SweepAge  time.Duration // the least age of the copies Sweep settles

	// afterPlaced, when set, runs after each placement with the number
	// placed so far (a test hook: it may kill an engine).
	afterPlaced func(n int)
}

// result is where everything went.
type result struct {
	Hosts     map[string]string // engine name -> provider UUID
	Placed    map[string]string // instance ID -> engine name
	Order     []string          // instance IDs in the order they were placed
	Elsewhere []string          // IDs another scheduler placed first
	Failed    map[string]error
	Down      []placement.HostDown
	Swept     placement.SweepReport
	Decisions int64
	Conflicts int64
	Elapsed   time.Duration
}

func main() {
	log.SetFlags(0)
	log.SetPrefix("scheduler: ")
	cfg := config{Parallel: 4, Weigher: "spread", Limit: placement.DefaultCandidateLimit, Command: []string{"sleep", "86400"}, SweepAge: placement.DefaultSweepAge}
	var engines, flavors multiFlag
	flag.StringVar(&cfg.Placement, "placement", "", "Placement endpoint without keystone (noauth2); empty: keystone from OS_* variables")
	flag.StringVar(&cfg.Token, "token", "admin", "token for -placement (noauth2 takes \"admin\")")
	flag.Var(&engines, "engine", "an engine: name=unix:///path/docker.sock or name=tcp://host:port,certdir=DIR (repeatable)")
	flag.StringVar(&cfg.StateDir, "state-dir", "/var/lib/dockervisor/scheduler", "where node UUIDs and instance state are kept")
	flag.StringVar(&cfg.Image, "image", "", "image reference present on every engine")
	flag.IntVar(&cfg.Count, "count", 10, "instances to place")
	flag.Var(&flavors, "flavor", "a flavor name=vcpus:memoryMB, used in turn (repeatable; default tiny=1:64)")
	flag.StringVar(&cfg.Weigher, "weigher", cfg.Weigher, "spread or pack")
	flag.IntVar(&cfg.Limit, "candidates", cfg.Limit, "allocation candidates asked of Placement per decision, weighed among themselves (0: all)")
	flag.IntVar(&cfg.Parallel, "parallel", cfg.Parallel, "placements in flight")
	flag.StringVar(&cfg.Trait, "trait", "CUSTOM_DOCKERVISOR_SCHEDULER_EXAMPLE", "custom trait put on the engines' providers and required by every placement")
	flag.Float64Var(&cfg.CPURatio, "cpu-allocation-ratio", 0, "VCPU allocation ratio (0: 16)")
	flag.BoolVar(&cfg.Sweep, "sweep", false, "after placing, settle instances that run on two engines (racing schedulers can leave them): keep the copy where the claim is")
	flag.DurationVar(&cfg.SweepAge, "sweep-age", cfg.SweepAge, "with -sweep, leave copies younger than this (placements still in progress); 0 settles at once, only for when no other scheduler is placing")
	flag.BoolVar(&cfg.Cleanup, "cleanup", false, "destroy the instances, release their claims and remove the providers at the end")
	flag.Parse()
	var err error
	if cfg.Engines, err = parseEngines(engines); err != nil {
		log.Fatal(err)
	}
	if cfg.Flavors, err = parseFlavors(flavors); err != nil {
		log.Fatal(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if _, err := run(ctx, cfg, os.Stdout); err != nil {
		log.Fatal(err)
	}
}

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, " ") }
func (m *multiFlag) Set(s string) error { *m = append(*m, s); return nil }

func parseEngines(args []string) ([]engineSpec, error) {
	var out []engineSpec
	for _, a := range args {
		name, rest, ok := strings.Cut(a, "=")
		if !ok || name == "" {
			return nil, fmt.Errorf("-engine %q: want name=host[,certdir=DIR]", a)
		}
		e := engineSpec{Name: name}
		parts := strings.Split(rest, ",")
		e.Host = parts[0]
		for _, p := range parts[1:] {
			k, v, _ := strings.Cut(p, "=")
			if k != "certdir" {
				return nil, fmt.Errorf("-engine %q: unknown option %q", a, k)
			}
			e.CertDir = v
		}
		out = append(out, e)
	}
	return out, nil
}

func parseFlavors(args []string) ([]flavor, error) {
	if len(args) == 0 {
		return []flavor{{Name: "tiny", VCPUs: 1, MemoryMB: 64}}, nil
	}
	var out []flavor
	for _, a := range args {
		name, spec, ok1 := strings.Cut(a, "=")
		cpu, mem, ok2 := strings.Cut(spec, ":")
		c, err1 := strconv.Atoi(cpu)
		m, err2 := strconv.ParseInt(mem, 10, 64)
		if !ok1 || !ok2 || err1 != nil || err2 != nil || c < 1 || m < hypervisor.MinMemoryMB {
			return nil, fmt.Errorf("-flavor %q: want name=vcpus:memoryMB", a)
		}
		out = append(out, flavor{Name: name, VCPUs: c, MemoryMB: m})
	}
	return out, nil
}

// host is one registered engine.
type host struct {
	spec     engineSpec
	driver   *docker.Driver
	reporter *placement.Reporter
	uuid     string
}

// newClient returns the Placement client: noauth with -placement, else
// keystone from the environment.
func newClient(ctx context.Context, cfg config) (*gophercloud.ServiceClient, error) {
	if cfg.Placement != "" {
		return placement.NewNoAuthClient(cfg.Placement, cfg.Token)
	}
	auth, err := openstack.AuthOptionsFromEnv()
	if err != nil {
		return nil, fmt.Errorf("no -placement and no keystone credentials: %w", err)
	}
	return placement.NewClient(ctx, auth, gophercloud.EndpointOpts{Region: os.Getenv("OS_REGION_NAME")})
}

// register makes a driver and a reporter for every engine and reports it.
func register(ctx context.Context, c *gophercloud.ServiceClient, cfg config) ([]*host, error) {
	var hosts []*host
	for _, e := range cfg.Engines {
		dir := filepath.Join(cfg.StateDir, e.Name)
		opts := []docker.Option{docker.WithDockerHost(e.Host), docker.WithStateDir(filepath.Join(dir, "instances")), docker.WithNodeName(e.Name)}
		if e.CertDir != "" {
			opts = append(opts, docker.WithTLS(docker.TLSConfig{
				CAFile:   filepath.Join(e.CertDir, "ca.pem"),
				CertFile: filepath.Join(e.CertDir, "cert.pem"),
				KeyFile:  filepath.Join(e.CertDir, "key.pem"),
			}))
		}
		d, err := docker.New(opts...)
		if err != nil {
			return hosts, fmt.Errorf("engine %s: %w", e.Name, err)
		}
		ropts := []placement.ReporterOption{placement.WithStateFile(filepath.Join(dir, "node.json")), placement.WithTraits(cfg.Trait)}
		if cfg.CPURatio > 0 {
			ropts = append(ropts, placement.WithInventoryPolicy(placement.VCPU, placement.InventoryPolicy{AllocationRatio: float32(cfg.CPURatio)}))
		}
		r, err := placement.NewReporter(c, d, ropts...)
		if err != nil {
			d.Close()
			return hosts, err
		}
		h := &host{spec: e, driver: d, reporter: r}
		hosts = append(hosts, h)
		st, err := r.Report(ctx)
		if err != nil {
			return hosts, fmt.Errorf("engine %s: report: %w", e.Name, err)
		}
		if st.EngineErr != nil {
			return hosts, fmt.Errorf("engine %s does not answer: %w", e.Name, st.EngineErr)
		}
		h.uuid = st.ProviderUUID
	}
	return hosts, nil
}

func run(ctx context.Context, cfg config, out io.Writer) (res result, err error) {
	if len(cfg.Engines) == 0 || cfg.Image == "" {
		return res, errors.New("need at least one -engine and an -image")
	}
	if cfg.Sweep && cfg.SweepAge < 0 {
		return res, fmt.Errorf("-sweep-age %s: want 0 or more", cfg.SweepAge)
	}
	if cfg.Parallel < 1 {
		cfg.Parallel = 1
	}
	var weigher placement.Weigher
	switch cfg.Weigher {
	case "spread":
		weigher = placement.Spread
	case "pack":
		weigher = placement.Pack
	default:
		return res, fmt.Errorf("weigher %q: want spread or pack", cfg.Weigher)
	}
	c, err := newClient(ctx, cfg)
	if err != nil {
		return res, err
	}
	hosts, err := register(ctx, c, cfg)
	defer func() {
		for _, h := range hosts {
			h.driver.Close()
		}
	}()
	if err != nil {
		return res, err
	}
	res.Hosts = map[string]string{}
	targets := make([]placement.Target, len(hosts))
	for i, h := range hosts {
		targets[i] = placement.Target{ProviderUUID: h.uuid, Name: h.spec.Name, Driver: h.driver}
		res.Hosts[h.spec.Name] = h.uuid
	}
	fmt.Fprintf(out, "registered %d engines in Placement\n", len(hosts))
	claimer, err := placement.NewClaimer(c, placement.Owner{})
	if err != nil {
		return res, err
	}
	var outMu sync.Mutex
	sched, err := placement.NewScheduler(claimer, targets, placement.WithWeigher(weigher), placement.WithCandidateLimit(cfg.Limit),
		placement.WithHostDownHook(func(d placement.HostDown) {
			outMu.Lock()
			defer outMu.Unlock()
			fmt.Fprintf(out, "engine %s is down (%v): provider %s disabled, %d instances stranded there\n",
				d.Target.Name, d.Cause, d.Target.ProviderUUID, len(d.Instances))
		}))
	if err != nil {
		return res, err
	}

	ids := cfg.IDs
	if len(ids) == 0 {
		for range cfg.Count {
			ids = append(ids, placement.NewUUID())
		}
	}
	res.Placed, res.Failed = map[string]string{}, map[string]error{}
	start := time.Now()
	work := make(chan int)
	var wg sync.WaitGroup
	for range cfg.Parallel {
		wg.Go(func() {
			for i := range work {
				id, f := ids[i], cfg.Flavors[i%len(cfg.Flavors)]
				spec := hypervisor.InstanceSpec{ID: id, Image: cfg.Image, Command: cfg.Command, VCPUs: f.VCPUs, MemoryMB: f.MemoryMB}
				req := placement.Request{Resources: placement.InstanceResources(f.VCPUs, f.MemoryMB, 0), Required: []string{cfg.Trait}}
				d, err := sched.Place(ctx, spec, req)
				outMu.Lock()
				switch {
				case errors.Is(err, placement.ErrAlreadyClaimed):
					res.Elsewhere = append(res.Elsewhere, id)
				case err != nil:
					res.Failed[id] = err
				default:
					res.Placed[id] = d.Host
					res.Order = append(res.Order, id)
				}
				n := len(res.Placed)
				outMu.Unlock()
				if err == nil && cfg.afterPlaced != nil {
					cfg.afterPlaced(n)
				}
			}
		})
	}
	for i := range ids {
		select {
		case work <- i:
		case <-ctx.Done():
		}
	}
	close(work)
	wg.Wait()
	res.Elapsed = time.Since(start)
	res.Decisions, res.Conflicts = sched.Stats()

	// A last report of every host: a dead engine found only now is
	// disabled as well.
	for _, h := range hosts {
		if st, err := h.reporter.Report(ctx); err == nil && st.EngineErr != nil {
			_ = sched.TakeDown(ctx, h.uuid, st.EngineErr)
		}
	}
	res.Down = sched.Down()
	printResult(out, hosts, res, cfg)

	if cfg.Sweep {
		var serr error
		res.Swept, serr = sched.Sweep(ctx, cfg.SweepAge)
		printSweep(out, hosts, res.Swept)
		err = errors.Join(err, serr)
	}

	if cfg.Cleanup {
		cerr := cleanup(context.WithoutCancel(ctx), claimer, hosts, res)
		if cerr == nil {
			fmt.Fprintln(out, "cleaned up: instances destroyed, claims released, providers removed")
		}
		err = errors.Join(err, cerr)
	}
	if len(res.Failed) > 0 {
		err = errors.Join(err, fmt.Errorf("%d instances could not be placed", len(res.Failed)))
	}
	return res, err
}

func printResult(out io.Writer, hosts []*host, res result, cfg config) {
	down := map[string]placement.HostDown{}
	for _, d := range res.Down {
		down[d.Target.ProviderUUID] = d
	}
	per := map[string][]string{}
	for id, h := range res.Placed {
		per[h] = append(per[h], id)
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ENGINE\tPROVIDER\tSTATE\tPLACED\tINSTANCES")
	for _, h := range hosts {
		state := "up"
		if _, ok := down[h.uuid]; ok {
			state = "DOWN (disabled)"
		}
		ids := per[h.spec.Name]
		slices.Sort(ids)
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\n", h.spec.Name, h.uuid, state, len(ids), strings.Join(ids, " "))
	}
	tw.Flush()
	for _, d := range res.Down {
		fmt.Fprintf(out, "stranded on %s: %s\n", d.Target.Name, strings.Join(d.Instances, " "))
	}
	if len(res.Elsewhere) > 0 {
		fmt.Fprintf(out, "placed by another scheduler: %d\n", len(res.Elsewhere))
	}
	for _, id := range slices.Sorted(maps.Keys(res.Failed)) {
		fmt.Fprintf(out, "failed %s: %v\n", id, res.Failed[id])
	}
	fmt.Fprintf(out, "%d placed in %s (weigher %s), %d claims, %d lost to other schedulers\n",
		len(res.Placed), res.Elapsed.Round(time.Millisecond), cfg.Weigher, res.Decisions, res.Conflicts)
}

// printSweep says what a sweep settled and what it left.
func printSweep(out io.Writer, hosts []*host, rep placement.SweepReport) {
	name := map[string]string{}
	for _, h := range hosts {
		name[h.uuid] = h.spec.Name
	}
	for _, id := range slices.Sorted(maps.Keys(rep.Removed)) {
		var removed []string
		for _, p := range rep.Removed[id] {
			removed = append(removed, name[p])
		}
		if kept, ok := rep.Kept[id]; ok {
			fmt.Fprintf(out, "swept %s: kept on %s (its claim), removed from %s\n", id, name[kept], strings.Join(removed, " "))
		} else {
			fmt.Fprintf(out, "swept %s in part: removed from %s, other copies could not be destroyed\n", id, strings.Join(removed, " "))
		}
	}
	for _, id := range rep.Unsettled {
		fmt.Fprintf(out, "unsettled %s: runs on several engines, its claim on none of them (or on several)\n", id)
	}
	fmt.Fprintf(out, "sweep: %d settled, %d unsettled, %d too young\n", len(rep.Kept), len(rep.Unsettled), len(rep.Young))
}

// cleanup destroys the instances on live engines, releases every claim
// (a dead engine's instances are gone with it), and removes the
// providers.
func cleanup(ctx context.Context, cl *placement.Claimer, hosts []*host, res result) error {
	var errs []error
	isDown := map[string]bool{}
	for _, d := range res.Down {
		isDown[d.Target.ProviderUUID] = true
	}
	for _, h := range hosts {
		held, err := placement.ProviderAllocations(ctx, cl.Client(), h.uuid)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for id := range held {
			if isDown[h.uuid] {
				errs = append(errs, cl.Release(ctx, id))
			} else {
				errs = append(errs, placement.DestroyReleased(ctx, cl, h.driver, id))
			}
		}
		errs = append(errs, h.reporter.Delete(ctx))
	}
	return errors.Join(errs...)
}
