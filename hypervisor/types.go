package hypervisor

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/dockervisor/dockervisor/network"
)

// Limits applied by [InstanceSpec.Validate].
const (
	// MaxVCPUs is the largest flavor Validate accepts.
	MaxVCPUs = 1024
	// MinMemoryMB is the smallest memory limit the engine accepts (6 MiB).
	MinMemoryMB = 6
	// MaxMemoryMB is the largest memory limit Validate accepts (16 TiB).
	MaxMemoryMB = 16 << 20
	// MaxIDLength is the longest instance ID Validate accepts.
	MaxIDLength = 128
)

// InstanceSpec describes an instance to spawn. It is persisted by the
// backend at spawn time and never changes afterwards.
type InstanceSpec struct {
	// ID is chosen by the caller (a Nova instance UUID, say) and unique per
	// Driver. Required: letters, digits, '_', '.', '-', starting with a
	// letter or digit, at most MaxIDLength characters.
	ID string
	// Name is the instance's hostname: an RFC 1123 host name. Empty means
	// the ID, which must then be a valid host name itself.
	Name string
	// Image names the image. With an image store configured it is a store
	// image ID, fetched into the engine when missing; otherwise it is an
	// image reference already present on the engine.
	Image string
	// Command overrides the image's command when non-empty. For an OS
	// instance it names the init to boot (default /sbin/init).
	Command []string
	// Boot selects an application or an OS instance; the zero value lets
	// the image decide (see [OSImageLabel]).
	Boot BootMode
	// Env is the process environment, added to the image's.
	Env map[string]string
	// VCPUs is the flavor's virtual CPU count, mapped to CPU shares (1024 a
	// vCPU). Zero means 1.
	VCPUs int
	// HardCPULimit also caps CPU time at VCPUs whole CPUs (a CFS quota),
	// instead of shares alone.
	HardCPULimit bool
	// MemoryMB is the memory limit in MiB. Zero means no limit.
	MemoryMB int64
	// Labels are the caller's labels, stored on the backend object. Keys
	// must not use the backend's reserved prefix.
	Labels map[string]string
	// Metadata is free-form instance metadata (Nova's instance metadata),
	// stored with the spec and returned by Info and List. UpdateMetadata
	// replaces it later.
	Metadata map[string]string

	// Boot data, given to the guest on its config drive (see package
	// configdrive) where cloud-init finds it. A backend checks it at
	// Spawn, before it changes anything, as its config drive takes it:
	// bad boot data is ErrInvalidArgument.

	// UserData is the user-data, decoded (Nova takes it base64-encoded),
	// at most 64 KiB (Nova's limit, configdrive.MaxUserDataBytes).
	UserData []byte
	// SSHKeys are public keys in authorized_keys format, with unique
	// names.
	SSHKeys []SSHKey
	// AdminPassword is the admin password; empty means none.
	AdminPassword string
	// Files are injected through the config drive (Nova's personality
	// files): absolute guest paths, not in /proc, /sys or /dev, each
	// once.
	Files []File
	// NoConfigDrive leaves the instance without a config drive: its boot
	// data reaches it only through a metadata service the backend
	// publishes it to (Nova's config_drive=False), or not at all.
	NoConfigDrive bool
	// AuthorizedKeysUser, when set, also writes SSHKeys to that guest
	// user's ~/.ssh/authorized_keys before the first start, for images
	// without cloud-init (the user must exist in the image's /etc/passwd).
	AuthorizedKeysUser string
	// VIFs are the instance's virtual interfaces (from Nova's network_info,
	// see [network.ParseNetworkInfo]), plugged at spawn and configured
	// inside the instance as eth0, eth1… in this order. They must pass
	// [network.ValidateVIFs]. A backend without VIF support
	// ([Capabilities] VIFs false) refuses a spec with VIFs as
	// ErrNotSupported.
	VIFs []network.VIF
}

// SSHKey is an SSH public key given to the guest (a Nova keypair).
type SSHKey struct {
	// Name names the key; empty means "key-N" by position (from 0).
	Name string `json:"name,omitempty"`
	// Data is the public key in authorized_keys format ("ssh-ed25519
	// AAAA... comment").
	Data string `json:"data"`
}

// File is a file to inject into the guest (a Nova personality file).
type File struct {
	// Path is the absolute path in the guest.
	Path string `json:"path"`
	// Content is the file's content.
	Content []byte `json:"content"`
}

var (
	idPattern       = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`)
	hostLabelRegexp = regexp.MustCompile(`^[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?$`)
)

// ValidateID checks an instance ID as [InstanceSpec.Validate] does. Driver
// methods that take an ID use it, so a malformed ID is ErrInvalidArgument,
// never ErrNotFound.
func ValidateID(id string) error {
	switch {
	case id == "":
		return fmt.Errorf("%w: empty instance ID", ErrInvalidArgument)
	case len(id) > MaxIDLength:
		return fmt.Errorf("%w: instance ID longer than %d characters", ErrInvalidArgument, MaxIDLength)
	case !idPattern.MatchString(id):
		return fmt.Errorf("%w: instance ID %q: use letters, digits, '_', '.' and '-', starting with a letter or digit", ErrInvalidArgument, id)
	}
	return nil
}

// ValidHostname reports whether name is an RFC 1123 host name.
func ValidHostname(name string) bool {
	if name == "" || len(name) > 253 {
		return false
	}
	for _, l := range strings.Split(name, ".") {
		if !hostLabelRegexp.MatchString(l) {
			return false
		}
	}
	return true
}

// Hostname returns the host name the instance gets: Name, or ID when Name
// is empty.
func (s InstanceSpec) Hostname() string {
	if s.Name != "" {
		return s.Name
	}
	return s.ID
}

// EffectiveVCPUs returns VCPUs, with zero read as 1.
func (s InstanceSpec) EffectiveVCPUs() int {
	if s.VCPUs == 0 {
		return 1
	}
	return s.VCPUs
}

// Validate checks the spec without touching any backend. Every problem is
// reported as ErrInvalidArgument.
func (s InstanceSpec) Validate() error {
	if err := ValidateID(s.ID); err != nil {
		return err
	}
	if !ValidHostname(s.Hostname()) {
		return fmt.Errorf("%w: %q is not a valid host name (RFC 1123)", ErrInvalidArgument, s.Hostname())
	}
	if strings.TrimSpace(s.Image) == "" {
		return fmt.Errorf("%w: empty image", ErrInvalidArgument)
	}
	if err := s.Boot.Validate(); err != nil {
		return err
	}
	if s.VCPUs < 0 || s.VCPUs > MaxVCPUs {
		return fmt.Errorf("%w: vCPUs %d out of range 0..%d", ErrInvalidArgument, s.VCPUs, MaxVCPUs)
	}
	if s.MemoryMB < 0 || (s.MemoryMB > 0 && s.MemoryMB < MinMemoryMB) || s.MemoryMB > MaxMemoryMB {
		return fmt.Errorf("%w: memory %d MiB out of range (0 for no limit, or %d..%d)", ErrInvalidArgument, s.MemoryMB, MinMemoryMB, MaxMemoryMB)
	}
	for k := range s.Env {
		if k == "" || strings.ContainsAny(k, "=\x00") {
			return fmt.Errorf("%w: bad environment variable name %q", ErrInvalidArgument, k)
		}
	}
	for k := range s.Labels {
		if k == "" {
			return fmt.Errorf("%w: empty label key", ErrInvalidArgument)
		}
	}
	if err := network.ValidateVIFs(s.VIFs); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidArgument, err)
	}
	return s.validateBootData()
}

// CloneVIFs returns a copy of vifs that shares no slices with it.
func CloneVIFs(vifs []network.VIF) []network.VIF {
	if vifs == nil {
		return nil
	}
	out := make([]network.VIF, len(vifs))
	for i, v := range vifs {
		v.Address = slices.Clone(v.Address)
		v.Subnets = slices.Clone(v.Subnets)
		for j, sn := range v.Subnets {
			sn.IPs = slices.Clone(sn.IPs)
			sn.DNS = slices.Clone(sn.DNS)
			sn.Routes = slices.Clone(sn.Routes)
			sn.FloatingIPs = slices.Clone(sn.FloatingIPs)
			v.Subnets[j] = sn
		}
		out[i] = v
	}
	return out
}

// Instance is what a backend knows of an instance: its spec as spawned and
// its current state. It is a value; operations go through the Driver by ID.
type Instance struct {
	ID        string            `json:"id"`
	Name      string            `json:"name"`
	Image     string            `json:"image"`
	BackendID string            `json:"backend_id"` // the engine's container ID
	State     State             `json:"state"`
	PID       int               `json:"pid,omitempty"` // >0 only while running or paused
	VCPUs     int               `json:"vcpus"`
	MemoryMB  int64             `json:"memory_mb"` // 0: no limit
	ExitCode  int               `json:"exit_code"` // of the last run, when stopped
	CreatedAt time.Time         `json:"created_at"`
	StartedAt time.Time         `json:"started_at,omitzero"`
	Labels    map[string]string `json:"labels,omitempty"`
	Metadata  map[string]string `json:"metadata,omitempty"`
	// VIFs are the VIFs plugged into the instance (at spawn, by PlugVIFs
	// or AttachInterface), in the order of their guest devices: they are
	// what every start of the instance attaches again.
	VIFs []network.VIF `json:"vifs,omitempty"`
	// Boot is BootOS for an OS instance and empty for an application.
	Boot BootMode `json:"boot,omitempty"`
}

// InstanceInfo is an instance with its resource usage, as a compute agent
// reports it. Memory is in bytes, CPU time as a duration.
type InstanceInfo struct {
	Instance
	// MemoryBytes is the memory the instance uses now; 0 when stopped.
	MemoryBytes uint64 `json:"memory_bytes"`
	// MaxMemoryBytes is the instance's memory limit, or the host's memory
	// when the instance has no limit.
	MaxMemoryBytes uint64 `json:"max_memory_bytes"`
	// CPUTime is the CPU time consumed by the instance's current run.
	CPUTime time.Duration `json:"cpu_time_ns"`
}

// StopOptions tunes a graceful stop.
type StopOptions struct {
	// Timeout is how long to wait after the graceful signal before killing.
	// Zero means the driver's default; negative means kill at once.
	Timeout time.Duration
}

// RebootOptions selects a soft or a hard reboot.
type RebootOptions struct {
	// Hard kills the process instead of stopping it gracefully.
	Hard bool
	// Timeout bounds the graceful stop of a soft reboot, as in StopOptions.
	Timeout time.Duration
}

// ListOptions filters List.
type ListOptions struct {
	// States keeps only instances in one of these states; empty means all.
	States []State
	// Labels keeps only instances that carry all of these labels.
	Labels map[string]string
}

// ConsoleOptions bounds ConsoleOutput. MaxBytes applies last, to what
// Since and TailLines keep. Negative bounds are ErrInvalidArgument.
type ConsoleOptions struct {
	// TailLines keeps only the last N lines; 0 means all lines.
	TailLines int
	// MaxBytes keeps only the last N bytes; 0 means DefaultConsoleMaxBytes.
	MaxBytes int
	// Since drops output written before this time; zero means from the start.
	Since time.Time
}

// DefaultConsoleMaxBytes bounds ConsoleOutput when ConsoleOptions.MaxBytes
// is zero.
const DefaultConsoleMaxBytes = 1 << 20

// SnapshotRequest names a snapshot and its metadata in the image store.
type SnapshotRequest struct {
	Name       string            // display name of the new store image
	Properties map[string]string // extra store properties
}

// EventType is the kind of a lifecycle event.
type EventType string

// Lifecycle event types.
const (
	EventStarted   EventType = "started"
	EventStopped   EventType = "stopped"
	EventPaused    EventType = "paused"
	EventUnpaused  EventType = "unpaused"
	EventCrashed   EventType = "crashed"
	EventDestroyed EventType = "destroyed"
)

// Event is a lifecycle event of one instance.
type Event struct {
	Type     EventType `json:"type"`
	ID       string    `json:"id"`
	Time     time.Time `json:"time"`
	ExitCode int       `json:"exit_code,omitempty"` // for stopped and crashed
	// Cause names the driver operation that caused the event when it is
	// a side effect, not the operation's own transition: CauseSnapshot
	// for the pause and unpause of a snapshot. Empty otherwise.
	Cause string `json:"cause,omitempty"`
	// Reason says why it happened (empty where the backend cannot tell).
	Reason EventReason `json:"reason,omitempty"`
	// Operation names the driver operation behind a ReasonRequested event.
	Operation string `json:"operation,omitempty"`
	// Flavor is the new flavor of an EventResized event.
	Flavor *Flavor `json:"flavor,omitempty"`
}

// CauseSnapshot is the Cause of the paused and unpaused events of the
// explicit pause around a snapshot's commit: an agent must not mistake
// them for a user's pause.
const CauseSnapshot = "snapshot"

// Capabilities reports what a Driver, as configured, can do. A method whose
// capability is false returns an error wrapping ErrNotSupported.
type Capabilities struct {
	Pause         bool `json:"pause"`
	Reboot        bool `json:"reboot"`
	SoftDelete    bool `json:"soft_delete"`
	Snapshot      bool `json:"snapshot"`
	ImageStore    bool `json:"image_store"`
	VIFs          bool `json:"vifs"`
	HotplugVIF    bool `json:"hotplug_vif"`
	HostResources bool `json:"host_resources"`
	InstanceStats bool `json:"instance_stats"`
	Events        bool `json:"events"`
	// OSInstances: instances can boot an OS (InstanceSpec.Boot, the
	// OSImageLabel image label), and the Driver is an OSInspector.
	OSInstances bool `json:"os_instances"`
	// Exec: GuestAccess.Exec works.
	Exec bool `json:"exec"`
	// ConsoleAttach: GuestAccess.AttachConsole works.
	ConsoleAttach bool `json:"console_attach"`
	// ConfigDrive: instances get a config drive with their boot data
	// (InstanceSpec.UserData and the rest).
	ConfigDrive bool `json:"config_drive"`
	// MetadataUpdate: UpdateMetadata works.
	MetadataUpdate bool `json:"metadata_update"`
	// AuthorizedKeys: InstanceSpec.AuthorizedKeysUser works.
	AuthorizedKeys bool `json:"authorized_keys"`
}
