package placement

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/gophercloud/gophercloud/v2"

	"github.com/dockervisor/dockervisor/hypervisor"
	"github.com/dockervisor/dockervisor/stats"
)

// Standard resource classes.
const (
	VCPU     = "VCPU"
	MemoryMB = "MEMORY_MB"
	DiskGB   = "DISK_GB"
)

// Defaults of a Reporter's inventory, Nova's defaults for a compute node.
const (
	DefaultCPUAllocationRatio  = 16.0
	DefaultRAMAllocationRatio  = 1.5
	DefaultDiskAllocationRatio = 1.0
	DefaultReservedMemoryMB    = 512
	DefaultReportInterval      = time.Minute
)

// HostDriver is what a Reporter needs of a Driver: its host figures and
// its capabilities. Every hypervisor.Driver is one.
type HostDriver interface {
	hypervisor.HostReporter
	Capabilities() hypervisor.Capabilities
}

var _ HostDriver = hypervisor.Driver(nil)

// InventoryPolicy tunes one resource class of the reported inventory.
// Zero fields mean the default: Reserved 0 (DefaultReservedMemoryMB for
// MEMORY_MB), the class's default allocation ratio, MinUnit 1, MaxUnit
// the total, StepSize 1.
type InventoryPolicy struct {
	Reserved        int
	AllocationRatio float32
	MinUnit         int
	MaxUnit         int
	StepSize        int
}

type reporterOptions struct {
	nodeUUID  string
	stateFile string
	nodeName  string
	policies  map[string]InventoryPolicy
	diskGB    int
	traits    []string
	interval  time.Duration
	logger    *slog.Logger
	hook      func(Status, error)
}

// ReporterOption configures a Reporter.
type ReporterOption func(*reporterOptions) error

var uuidPattern = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// ValidUUID reports whether s is a lower-case, dashed UUID, the form
// Placement returns.
func ValidUUID(s string) bool { return uuidPattern.MatchString(s) }

// NewUUID returns a random (version 4) UUID.
func NewUUID() string { return uuid.NewString() }

// WithNodeUUID sets the node's provider UUID explicitly (Nova's compute
// node UUID, say). Without it the UUID comes from WithStateFile.
func WithNodeUUID(uuid string) ReporterOption {
	return func(o *reporterOptions) error {
		if !ValidUUID(uuid) {
			return fmt.Errorf("%w: node UUID %q is not a lower-case UUID", ErrInvalidArgument, uuid)
		}
		o.nodeUUID = uuid
		return nil
	}
}

// WithStateFile sets the file where the Reporter keeps the node's UUID:
// made up and written (atomically) on the first report, read on every
// later start, so the node keeps its provider across restarts. One file
// per node.
func WithStateFile(path string) ReporterOption {
	return func(o *reporterOptions) error {
		if path == "" {
			return fmt.Errorf("%w: empty state file path", ErrInvalidArgument)
		}
		o.stateFile = path
		return nil
	}
}

// WithNodeName sets the provider's name. The default is the driver's
// first AvailableNodes name.
func WithNodeName(name string) ReporterOption {
	return func(o *reporterOptions) error {
		if name == "" || len(name) > 200 {
			return fmt.Errorf("%w: node name %q must have 1 to 200 characters", ErrInvalidArgument, name)
		}
		o.nodeName = name
		return nil
	}
}

// WithInventoryPolicy sets the reserved amount, allocation ratio and
// units of one resource class (VCPU, MEMORY_MB or DISK_GB).
func WithInventoryPolicy(class string, p InventoryPolicy) ReporterOption {
	return func(o *reporterOptions) error {
		switch class {
		case VCPU, MemoryMB, DiskGB:
		default:
			return fmt.Errorf("%w: resource class %q: the reporter manages VCPU, MEMORY_MB and DISK_GB", ErrInvalidArgument, class)
		}
		if p.Reserved < 0 || p.AllocationRatio < 0 || p.MinUnit < 0 || p.MaxUnit < 0 || p.StepSize < 0 ||
			(p.MaxUnit > 0 && p.MinUnit > p.MaxUnit) {
			return fmt.Errorf("%w: inventory policy %+v for %s", ErrInvalidArgument, p, class)
		}
		o.policies[class] = p
		return nil
	}
}

// WithDiskGB reports a DISK_GB total of gb instead of the driver's
// figure. A remote engine's driver reports no disk (0), and a provider
// without DISK_GB inventory only matches requests without disk.
func WithDiskGB(gb int) ReporterOption {
	return func(o *reporterOptions) error {
		if gb < 0 {
			return fmt.Errorf("%w: negative disk size", ErrInvalidArgument)
		}
		o.diskGB = gb
		return nil
	}
}

// WithTraits adds traits to the provider (custom traits are created),
// such as a site or a rack, for schedulers to require.
func WithTraits(traits ...string) ReporterOption {
	return func(o *reporterOptions) error {
		for _, t := range traits {
			if !validTrait(t) {
				return fmt.Errorf("%w: trait %q: use A-Z, 0-9 and '_'", ErrInvalidArgument, t)
			}
		}
		o.traits = append(o.traits, traits...)
		return nil
	}
}

// WithReportInterval sets the interval of Run (default a minute).
func WithReportInterval(d time.Duration) ReporterOption {
	return func(o *reporterOptions) error {
		if d <= 0 {
			return fmt.Errorf("%w: report interval must be positive", ErrInvalidArgument)
		}
		o.interval = d
		return nil
	}
}

// WithReportHook calls f after every report of Run, with its result.
func WithReportHook(f func(Status, error)) ReporterOption {
	return func(o *reporterOptions) error {
		o.hook = f
		return nil
	}
}

// WithLogger sets the logger; the Reporter logs at debug level only.
func WithLogger(l *slog.Logger) ReporterOption {
	return func(o *reporterOptions) error {
		if l == nil {
			return fmt.Errorf("%w: nil logger", ErrInvalidArgument)
		}
		o.logger = l
		return nil
	}
}

// Status is the result of a report.
type Status struct {
	ProviderUUID string
	Name         string
	// Inventory is what the provider offers, as reported.
	Inventory map[string]Inventory
	// Traits are the provider's traits after the report.
	Traits []string
	// Disabled is true when the provider carries TraitDisabled.
	Disabled bool
	// EngineErr is why the host's engine could not be read (an error
	// wrapping hypervisor.ErrUnavailable); the provider was disabled.
	EngineErr error
	// Changed is true when the report wrote something.
	Changed bool
}

// Reporter keeps one host's resource provider current in Placement: its
// name, inventory and traits, and its disabled mark while its engine is
// unreachable. Its methods are safe for concurrent use; reports are
// serialised.
type Reporter struct {
	client *gophercloud.ServiceClient
	drv    HostDriver
	opts   reporterOptions

	mu            sync.Mutex // serialises reports
	uuid          string
	adminDisabled bool
}

// NewReporter returns a Reporter of drv's host to Placement through
// client. It does no I/O; the provider is created by the first Report.
// Either WithNodeUUID or WithStateFile is required, so that the node's
// provider UUID is stable.
func NewReporter(client *gophercloud.ServiceClient, drv HostDriver, opts ...ReporterOption) (*Reporter, error) {
	if client == nil || drv == nil {
		return nil, fmt.Errorf("%w: nil client or driver", ErrInvalidArgument)
	}
	o := reporterOptions{
		policies: map[string]InventoryPolicy{},
		interval: DefaultReportInterval,
		logger:   slog.New(slog.DiscardHandler),
	}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	if o.nodeUUID == "" && o.stateFile == "" {
		return nil, fmt.Errorf("%w: a stable node UUID needs WithNodeUUID or WithStateFile", ErrInvalidArgument)
	}
	return &Reporter{client: client, drv: drv, opts: o, uuid: o.nodeUUID}, nil
}

// nodeState is the state file's content.
type nodeState struct {
	NodeUUID string `json:"node_uuid"`
}

// NodeUUID returns the node's provider UUID: the one set with
// WithNodeUUID, else the state file's, which it writes with a new UUID
// the first time.
func (r *Reporter) NodeUUID() (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.nodeUUID()
}

func (r *Reporter) nodeUUID() (string, error) {
	if r.uuid != "" {
		return r.uuid, nil
	}
	b, err := os.ReadFile(r.opts.stateFile)
	switch {
	case err == nil:
		var st nodeState
		if err := json.Unmarshal(b, &st); err != nil || !ValidUUID(st.NodeUUID) {
			return "", fmt.Errorf("%w: state file %s holds no node UUID", ErrInvalidArgument, r.opts.stateFile)
		}
		r.uuid = st.NodeUUID
		return r.uuid, nil
	case !errors.Is(err, os.ErrNotExist):
		return "", fmt.Errorf("placement: read state file: %w", err)
	}
	st := nodeState{NodeUUID: NewUUID()}
	if err := writeFileAtomic(r.opts.stateFile, st); err != nil {
		return "", err
	}
	r.uuid = st.NodeUUID
	return r.uuid, nil
}

func writeFileAtomic(path string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("placement: state directory: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".placement-state-*")
	if err != nil {
		return fmt.Errorf("placement: state file: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("placement: state file: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("placement: state file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("placement: state file: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("placement: state file: %w", err)
	}
	return nil
}

// Inventories computes the inventory to report for host h: VCPU with the
// CPU allocation ratio, MEMORY_MB with reserved memory, and DISK_GB when
// the host (or WithDiskGB) has a disk size. Exported for tests and for
// callers that report by other means.
func (r *Reporter) Inventories(h stats.Host) map[string]Inventory {
	out := map[string]Inventory{}
	add := func(class string, total int, defReserved int, defRatio float32) {
		if total <= 0 {
			return
		}
		p := r.opts.policies[class]
		inv := Inventory{
			Total:           total,
			Reserved:        defReserved,
			AllocationRatio: defRatio,
			MinUnit:         1,
			MaxUnit:         total,
			StepSize:        1,
		}
		if p.Reserved > 0 {
			inv.Reserved = p.Reserved
		}
		inv.Reserved = min(inv.Reserved, total)
		if p.AllocationRatio > 0 {
			inv.AllocationRatio = p.AllocationRatio
		}
		if p.MinUnit > 0 {
			inv.MinUnit = p.MinUnit
		}
		if p.MaxUnit > 0 {
			inv.MaxUnit = min(p.MaxUnit, total)
		}
		if p.StepSize > 0 {
			inv.StepSize = p.StepSize
		}
		inv.MinUnit = min(inv.MinUnit, inv.MaxUnit)
		out[class] = inv
	}
	add(VCPU, h.VCPUs, 0, DefaultCPUAllocationRatio)
	add(MemoryMB, int(h.MemoryMB), DefaultReservedMemoryMB, DefaultRAMAllocationRatio)
	disk := int(h.DiskGB)
	if r.opts.diskGB > 0 {
		disk = r.opts.diskGB
	}
	add(DiskGB, disk, 0, DefaultDiskAllocationRatio)
	return out
}

// Report brings the provider up to date once: it reads the driver's host
// figures, creates or renames the provider, replaces its inventory when it
// changed and sets its traits, each write with the provider's generation
// and retried on a generation conflict. When the engine cannot be read
// (hypervisor.ErrUnavailable), the provider is marked disabled, its
// inventory is left as it was, Status.EngineErr says why and the error is
// nil; the mark goes when a later report reaches the engine (unless
// SetDisabled(true) was called).
func (r *Reporter) Report(ctx context.Context) (Status, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	uuid, err := r.nodeUUID()
	if err != nil {
		return Status{}, err
	}
	st := Status{ProviderUUID: uuid}
	h, herr := r.drv.HostResources(ctx)
	if herr != nil && !errors.Is(herr, hypervisor.ErrUnavailable) {
		return st, fmt.Errorf("placement: host resources: %w", herr)
	}
	if herr != nil {
		// The engine is down: mark the provider (if it exists) and keep
		// its inventory and allocations for the instances it holds.
		st.EngineErr = herr
		if _, err := GetProvider(ctx, r.client, uuid); err != nil {
			return st, err
		}
		if err := SetProviderDisabled(ctx, r.client, uuid, true); err != nil {
			return st, err
		}
		return r.finish(ctx, st)
	}
	name := r.opts.nodeName
	if name == "" {
		nodes, err := r.drv.AvailableNodes(ctx)
		if err != nil {
			return st, fmt.Errorf("placement: available nodes: %w", err)
		}
		if len(nodes) == 0 {
			return st, fmt.Errorf("%w: the driver serves no node", ErrInvalidArgument)
		}
		name = nodes[0]
	}
	st.Name = name
	rp, err := ensureProvider(ctx, r.client, uuid, name)
	if err != nil {
		return st, err
	}
	st.Changed = rp.Generation == 0
	inv := r.Inventories(h)
	changed, err := setInventories(ctx, r.client, uuid, inv)
	if err != nil {
		return st, err
	}
	st.Changed = st.Changed || changed
	want := CapabilityTraits(r.drv.Capabilities())
	if h.HypervisorType != "" {
		if t := CustomTrait("HYPERVISOR_" + h.HypervisorType); t != "" {
			want = append(want, t)
		}
	}
	want = append(want, r.opts.traits...)
	disabled := r.adminDisabled
	err = updateTraits(ctx, r.client, uuid, func(set map[string]bool) {
		for t := range set {
			if managedTrait(t) && !slices.Contains(want, t) {
				delete(set, t)
			}
		}
		for _, t := range want {
			set[t] = true
		}
		if disabled {
			set[TraitDisabled] = true
		}
	})
	if err != nil {
		return st, err
	}
	return r.finish(ctx, st)
}

// finish reads back the provider's inventory and traits into st.
func (r *Reporter) finish(ctx context.Context, st Status) (Status, error) {
	c, err := getProviderView(ctx, r.client, st.ProviderUUID)
	if err != nil {
		return st, err
	}
	st.Inventory, st.Traits, st.Disabled = c.inventory, c.traits, slices.Contains(c.traits, TraitDisabled)
	if st.Name == "" {
		st.Name = c.name
	}
	return st, nil
}

// SetDisabled disables the provider (an operator's decision; reports keep
// it disabled) or enables it again. It is idempotent.
func (r *Reporter) SetDisabled(ctx context.Context, disabled bool) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	uuid, err := r.nodeUUID()
	if err != nil {
		return err
	}
	r.adminDisabled = disabled
	return SetProviderDisabled(ctx, r.client, uuid, disabled)
}

// Run reports at once and then at the report interval until ctx ends,
// passing each result to the report hook. It returns ctx's error.
func (r *Reporter) Run(ctx context.Context) error {
	t := time.NewTicker(r.opts.interval)
	defer t.Stop()
	for {
		st, err := r.Report(ctx)
		if err != nil && ctx.Err() == nil {
			r.opts.logger.WarnContext(ctx, "placement report failed; retried at the next interval", "op", "report", "provider", st.ProviderUUID, "err", err)
		} else {
			r.opts.logger.DebugContext(ctx, "placement report", "provider", st.ProviderUUID, "disabled", st.Disabled, "changed", st.Changed, "err", err)
		}
		if r.opts.hook != nil {
			r.opts.hook(st, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// Delete deletes the node's provider from Placement. It returns nil if
// there is none and ErrConflict while instances hold allocations on it.
// The state file is kept, so a later report recreates the same provider.
func (r *Reporter) Delete(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	uuid, err := r.nodeUUID()
	if err != nil {
		return err
	}
	return DeleteProvider(ctx, r.client, uuid)
}

// providerView is a provider's name, inventory and traits.
type providerView struct {
	name      string
	inventory map[string]Inventory
	traits    []string
}

func getProviderView(ctx context.Context, c *gophercloud.ServiceClient, uuid string) (providerView, error) {
	rp, err := GetProvider(ctx, c, uuid)
	if err != nil {
		return providerView{}, err
	}
	inv, err := getInventories(ctx, c, uuid)
	if err != nil {
		return providerView{}, err
	}
	tr, err := getTraits(ctx, c, uuid)
	if err != nil {
		return providerView{}, err
	}
	return providerView{name: rp.Name, inventory: inv, traits: tr}, nil
}
