package ovs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Runner runs one ovs-vsctl command line. Args are everything after the
// global options, such as "--", "--may-exist", "add-port", "br-int", "qvo1".
// A Runner returns ovs-vsctl's standard output; a failure is an error of
// the classes of this package ([ErrUnavailable] when the database or
// ovs-vswitchd does not answer in time).
//
// The real Runner is [Vsctl]; tests inject a recording one with
// [WithRunner].
type Runner interface {
	Run(ctx context.Context, args ...string) ([]byte, error)
}

// DefaultTimeout is the ovs-vsctl --timeout of [Vsctl] when none is set.
// ovs-vsctl without a timeout waits forever for a missing ovs-vswitchd.
const DefaultTimeout = 10 * time.Second

// Vsctl is the real [Runner]: it executes the ovs-vsctl binary with
// --timeout and, when DB is set, --db. The zero value runs "ovs-vsctl" from
// PATH against the default database with [DefaultTimeout].
type Vsctl struct {
	// Path is the ovs-vsctl binary; empty means "ovs-vsctl" from PATH.
	Path string
	// DB is the database to talk to, such as "unix:/run/openvswitch/db.sock";
	// empty means ovs-vsctl's default.
	DB string
	// Timeout bounds each command (ovs-vsctl --timeout, whole seconds,
	// rounded up); zero means [DefaultTimeout]. The caller's context can
	// end a command sooner.
	Timeout time.Duration
}

var _ Runner = Vsctl{}

// Run executes ovs-vsctl with the global options and args. Besides a
// failed run, a run that succeeded but reported a new interface that
// ovs-vswitchd could not open is an [*Error] of class [ErrPortFailed]
// (with the standard output returned too).
func (v Vsctl) Run(ctx context.Context, args ...string) ([]byte, error) {
	path := v.Path
	if path == "" {
		path = "ovs-vsctl"
	}
	timeout := v.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	secs := int((timeout + time.Second - 1) / time.Second)
	full := make([]string, 0, len(args)+2)
	full = append(full, "--timeout="+strconv.Itoa(secs))
	if v.DB != "" {
		full = append(full, "--db="+v.DB)
	}
	full = append(full, args...)
	cmd := exec.CommandContext(ctx, path, full...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	err := cmd.Run()
	if err == nil {
		if bad := portSetupError(stderr.String()); bad != "" {
			return stdout.Bytes(), &Error{Args: args, Stderr: bad, Class: ErrPortFailed, Err: errSetup}
		}
		return stdout.Bytes(), nil
	}
	return nil, classify(ctx, args, stderr.String(), err)
}

var errSetup = errors.New("ovs-vswitchd could not set up an interface")

// portSetupError returns ovs-vsctl's warning about an interface it added
// that ovs-vswitchd could not open (ofport -1). ovs-vsctl checks every
// interface it added once ovs-vswitchd has applied the transaction, prints
// "Error detected while setting up 'NAME': ...", and still exits 0.
func portSetupError(stderr string) string {
	for line := range strings.Lines(stderr) {
		if strings.Contains(line, "Error detected while setting up") {
			return strings.TrimSpace(line)
		}
	}
	return ""
}

// Error is a failed ovs-vsctl command. It wraps one class of this package
// (such as [ErrUnavailable] or [ErrBridgeNotFound]) and the cause.
type Error struct {
	Args   []string // the command's arguments after the global options
	Stderr string   // what ovs-vsctl printed on its standard error, trimmed
	Class  error    // the class of this package the failure belongs to
	Err    error    // the cause: the exit status or the context's error
}

func (e *Error) Error() string {
	msg := fmt.Sprintf("%v: ovs-vsctl %s: %v", e.Class, strings.Join(e.Args, " "), e.Err)
	if e.Stderr != "" {
		msg += ": " + e.Stderr
	}
	return msg
}

// Unwrap returns the class and the cause.
func (e *Error) Unwrap() []error { return []error{e.Class, e.Err} }

// classify turns a failed run of ovs-vsctl into an *Error. ovs-vsctl reports
// through its exit status and stderr only, so this reads both: it exits by
// SIGALRM when --timeout expires (ovsdb-server hung, or ovs-vswitchd not
// applying the change), and prints "database connection failed" when the
// database socket does not answer.
func classify(ctx context.Context, args []string, stderr string, err error) error {
	e := &Error{Args: args, Stderr: strings.TrimSpace(stderr), Class: ErrCommand, Err: err}
	var exit *exec.ExitError
	switch {
	case ctx.Err() != nil:
		e.Class, e.Err = ErrUnavailable, context.Cause(ctx)
	case errors.Is(err, exec.ErrNotFound), errors.Is(err, fs.ErrNotExist):
		e.Class = ErrUnavailable
	case errors.As(err, &exit) && signaled(exit, syscall.SIGALRM):
		e.Class = ErrUnavailable
	case strings.Contains(stderr, "database connection failed"):
		e.Class = ErrUnavailable
	case strings.Contains(stderr, "no bridge named"):
		e.Class = ErrBridgeNotFound
	}
	return e
}

func signaled(exit *exec.ExitError, sig syscall.Signal) bool {
	ws, ok := exit.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == sig
}
