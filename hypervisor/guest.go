package hypervisor

import (
	"context"
	"io"

	"github.com/dockervisor/dockervisor/errclass"
)

// ErrCommandNotFound means an exec could not start its command: the
// binary does not exist in the instance (or is not executable). The
// instance is untouched. It is an [ErrNotFound].
var ErrCommandNotFound = errclass.New("hypervisor: command not found in instance", ErrNotFound)

// TerminalSize is a terminal's size in character cells.
type TerminalSize struct {
	Rows uint16 `json:"rows"`
	Cols uint16 `json:"cols"`
}

// ExecSpec describes a command to run in a running instance. Its zero
// value, but for Args, means "default": the image's user and working
// directory, no terminal, no input, output discarded.
type ExecSpec struct {
	// Args is the command and its arguments; Args[0] is looked up in the
	// instance's PATH. Required.
	Args []string
	// Env is added to the instance's environment for this command.
	Env map[string]string
	// User runs the command as this user ("name", "uid" or "uid:gid");
	// empty means the instance's default user.
	User string
	// WorkDir is the working directory; empty means the instance's.
	WorkDir string
	// TTY runs the command on a new terminal: Stdout then carries both
	// output streams and Stderr is unused.
	TTY bool
	// Size is the terminal's initial size (TTY only); zero means the
	// backend's default. Engines before API 1.42 set it only once the
	// process has started, so its first moments may see a 0x0 terminal.
	Size TerminalSize
	// Resize delivers terminal size changes while the command runs (TTY
	// only). The caller may close it.
	Resize <-chan TerminalSize
	// Stdin, if not nil, is copied to the command's standard input; its
	// end (io.EOF) closes the command's input. With TTY the end is not
	// passed on (a terminal's end of input is a ^D typed into it).
	Stdin io.Reader
	// Stdout and Stderr, if not nil, receive the command's output.
	Stdout, Stderr io.Writer
}

// ExecResult is the outcome of a finished command.
type ExecResult struct {
	// ExitCode is the command's exit status (128+signal when a signal
	// ended it).
	ExitCode int `json:"exit_code"`
}

// ConsoleAttachOptions tunes AttachConsole.
type ConsoleAttachOptions struct {
	// Size is the console's initial size; zero leaves it unchanged.
	Size TerminalSize
}

// Console is an attached, interactive console of an instance: the
// terminal of its main process, as a VM's serial console. Read returns
// what the instance writes to it (io.EOF once the process ends), Write
// types into it. Close detaches, and leaves the instance running. A
// Console is safe for one reader and one writer at a time; Close and
// Resize may be called concurrently with them.
type Console interface {
	io.ReadWriteCloser
	// Resize sets the console's size.
	Resize(ctx context.Context, size TerminalSize) error
}

// GuestAccess reaches into running instances.
type GuestAccess interface {
	// Exec runs a command in a running instance and waits for it to end,
	// copying spec's streams. Ending ctx ends the command and returns
	// ctx's error. A command that cannot start is ErrCommandNotFound; an
	// instance that is not running (paused, stopped) is ErrInvalidState;
	// neither changes the instance. A non-zero exit status is no error.
	Exec(ctx context.Context, id string, spec ExecSpec) (ExecResult, error)
	// AttachConsole attaches to the running instance's console. ctx bounds
	// the attach only; the Console lives until it is closed or the
	// instance's process ends. Valid only in state running.
	AttachConsole(ctx context.Context, id string, opts ConsoleAttachOptions) (Console, error)
}

// MetadataUpdater changes instance metadata after spawn.
type MetadataUpdater interface {
	// UpdateMetadata replaces the instance's metadata (Nova's metadata
	// update), without a restart: Info and List return the new metadata,
	// and the config drive, if the instance has one, shows it. Valid in
	// every state.
	UpdateMetadata(ctx context.Context, id string, metadata map[string]string) error
}
