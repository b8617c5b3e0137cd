package hypervisor

import (
	"context"
	"fmt"
	"time"

	"github.com/dockervisor/dockervisor/errclass"
)

// BootMode selects what an instance's process is: an application (the
// image's command, as any container) or an operating system (the image's
// init as PID 1, booting services as a VM does).
type BootMode string

// Boot modes.
const (
	// BootAuto, the zero value, lets the image decide: an image with the
	// [OSImageLabel] label boots as an OS instance, any other image as an
	// application.
	BootAuto BootMode = ""
	// BootApp runs the image as an application, whatever its labels say.
	BootApp BootMode = "app"
	// BootOS boots the image's init as PID 1: an OS instance.
	BootOS BootMode = "os"
)

// OSImageLabel is the image label that marks an image as one that boots
// an operating system. Its value names the init system; "systemd" is the
// one backends know. An instance spawned from such an image with
// [BootAuto] is an OS instance.
const OSImageLabel = "io.dockervisor.os"

// InitSystemd is the value of [OSImageLabel] for images booting systemd.
const InitSystemd = "systemd"

// Validate reports whether m is a known boot mode.
func (m BootMode) Validate() error {
	switch m {
	case BootAuto, BootApp, BootOS:
		return nil
	}
	return fmt.Errorf("%w: boot mode %q (use %q, %q or empty)", ErrInvalidArgument, string(m), BootApp, BootOS)
}

// Errors of OS instances (see the Errors section of the package
// documentation for their classes).
var (
	// ErrNoInit means the image of an OS instance has no init to boot
	// (no executable /sbin/init, or no command the spec named). Spawn
	// fails with it and leaves nothing behind. It is an
	// [ErrInvalidArgument].
	ErrNoInit = errclass.New("hypervisor: image has no init", ErrInvalidArgument)
	// ErrDegraded means an OS instance finished booting but its init
	// reports a degraded system: a unit failed. The instance keeps
	// running; [OSStatus.FailedUnits] names the units. It is an
	// [ErrGuestFailed].
	ErrDegraded = errclass.New("hypervisor: operating system degraded", ErrGuestFailed)
	// ErrCloudInit means cloud-init inside an OS instance finished with
	// an error, such as user-data that failed; [CloudInitStatus.Errors]
	// has cloud-init's messages. It is an [ErrGuestFailed].
	ErrCloudInit = errclass.New("hypervisor: cloud-init failed", ErrGuestFailed)
)

// System states, as `systemctl is-system-running` reports them.
const (
	SystemInitializing = "initializing"
	SystemStarting     = "starting"
	SystemRunning      = "running"
	SystemDegraded     = "degraded"
	SystemMaintenance  = "maintenance"
	SystemStopping     = "stopping"
	SystemOffline      = "offline"
)

// OSStatus is what the operating system of an OS instance reports about
// itself, and how its last shutdown went.
type OSStatus struct {
	// System is the init system's state (System* constants); "offline"
	// when the instance is not running.
	System string `json:"system"`
	// FailedUnits are the units in the failed state.
	FailedUnits []string `json:"failed_units,omitempty"`
	// CloudInit is cloud-init's status; zero when the instance is not
	// running or the image has no cloud-init.
	CloudInit CloudInitStatus `json:"cloud_init"`
	// LastShutdown is how the last stop through the driver went; zero
	// before the first.
	LastShutdown ShutdownReport `json:"last_shutdown,omitzero"`
}

// CloudInitStatus is `cloud-init status` inside an instance.
type CloudInitStatus struct {
	// Status is "not run", "running", "done", "error" or "disabled";
	// empty when cloud-init is not installed.
	Status string `json:"status,omitempty"`
	// Datasource is the datasource cloud-init used, such as "configdrive".
	Datasource string `json:"datasource,omitempty"`
	// Errors are cloud-init's error messages.
	Errors []string `json:"errors,omitempty"`
}

// ShutdownReport describes one stop of an OS instance.
type ShutdownReport struct {
	// At is when the stop finished.
	At time.Time `json:"at"`
	// Duration is how long the stop took, from the halt signal to the
	// exit.
	Duration time.Duration `json:"duration_ns"`
	// Orderly is true when the OS shut itself down in time, false when it
	// was killed (after the timeout, or at once for a hard stop).
	Orderly bool `json:"orderly"`
	// TimedOut is true when the OS did not finish its shutdown within the
	// stop timeout and was killed.
	TimedOut bool `json:"timed_out,omitempty"`
	// ExitCode is the init's exit status (137 when killed).
	ExitCode int `json:"exit_code"`
}

// WaitBootOptions tunes WaitBooted.
type WaitBootOptions struct {
	// CloudInit also waits for cloud-init to finish, and reports its
	// failure as ErrCloudInit.
	CloudInit bool
}

// OSInspector is implemented by Drivers that run OS instances
// ([Capabilities.OSInstances]). It is an optional interface, as in
// database/sql/driver: test for it with a type assertion.
type OSInspector interface {
	// OSStatus reports what the OS in instance id says about itself. It
	// asks the instance when it runs; otherwise System is "offline". An
	// application instance returns ErrNotSupported.
	OSStatus(ctx context.Context, id string) (OSStatus, error)
	// WaitBooted waits until the OS in running instance id has finished
	// booting (and, with opts.CloudInit, cloud-init has finished), or ctx
	// ends. A degraded system returns the status and an error wrapping
	// ErrDegraded, a failed cloud-init one wrapping ErrCloudInit; an
	// instance that stops while booting returns ErrInvalidState.
	WaitBooted(ctx context.Context, id string, opts WaitBootOptions) (OSStatus, error)
}
