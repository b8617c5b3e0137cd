package docker

import (
	"fmt"
	"log/slog"
	"regexp"
	"time"

	"github.com/dockervisor/dockervisor/configdrive"
	"github.com/dockervisor/dockervisor/hypervisor"
	"github.com/dockervisor/dockervisor/image"
	"github.com/dockervisor/dockervisor/network"
	"github.com/dockervisor/dockervisor/snapshot"
)

// Defaults of the options.
const (
	DefaultLabelPrefix = "io.dockervisor."
	DefaultNamePrefix  = "dockervisor-"
	DefaultStateDir    = "/var/lib/dockervisor"
	DefaultStopTimeout = 10 * time.Second
)

// TLSConfig configures TLS to a TCP engine endpoint. Server verification is
// on unless InsecureSkipVerify is set.
type TLSConfig struct {
	CAFile   string // CA bundle that signs the engine's certificate; empty: system roots
	CertFile string // client certificate (with KeyFile) for mutual TLS
	KeyFile  string
	// InsecureSkipVerify turns server certificate verification off. Never
	// use it outside a lab.
	InsecureSkipVerify bool
}

type options struct {
	host        string
	tls         *TLSConfig
	api         APIClient
	logger      *slog.Logger
	labelPrefix string
	namePrefix  string
	stateDir    string
	stopTimeout time.Duration
	images      image.Reader
	nodeName    string
	vifs        network.VIFDriver // nil: no networking
	ports       PortObserver      // nil: nobody watches ports
	metadata    MetadataRegistry  // nil: no metadata service

	snapshots        image.Writer                         // see WithSnapshotStore
	snapshotProgress func(id string, p snapshot.Progress) // see WithSnapshotProgress
	eventBuffer      int
	configDrive      []configdrive.Option // see WithConfigDriveOptions
	runtime          string               // see WithRuntime; empty: the engine's default
}

// Option configures a Driver. Options are applied in order; an option that
// returns an error makes New fail.
type Option func(*options) error

// WithDockerHost sets the engine endpoint, such as
// "unix:///var/run/docker.sock" or "tcp://10.0.0.5:2376". The default comes
// from the DOCKER_HOST environment variable, else the local socket.
func WithDockerHost(host string) Option {
	return func(o *options) error {
		if host == "" {
			return fmt.Errorf("%w: empty docker host", hypervisor.ErrInvalidArgument)
		}
		o.host = host
		return nil
	}
}

// WithTLS connects to a TCP endpoint over TLS with server verification on
// (unless cfg.InsecureSkipVerify).
func WithTLS(cfg TLSConfig) Option {
	return func(o *options) error {
		if (cfg.CertFile == "") != (cfg.KeyFile == "") {
			return fmt.Errorf("%w: TLS client certificate and key go together", hypervisor.ErrInvalidArgument)
		}
		o.tls = &cfg
		return nil
	}
}

// WithAPIClient makes the Driver use c instead of dialling an engine. It is
// intended for tests; the Driver still pings c before first use.
func WithAPIClient(c APIClient) Option {
	return func(o *options) error {
		if c == nil {
			return fmt.Errorf("%w: nil API client", hypervisor.ErrInvalidArgument)
		}
		o.api = c
		return nil
	}
}

// WithLogger sets the logger. The Driver logs at debug level only. The
// default discards everything.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) error {
		if l == nil {
			return fmt.Errorf("%w: nil logger", hypervisor.ErrInvalidArgument)
		}
		o.logger = l
		return nil
	}
}

var labelPrefixPattern = regexp.MustCompile(`^[a-z0-9]([a-z0-9.-]*[a-z0-9])?[.]$`)

// WithLabelPrefix sets the prefix of the labels the Driver puts on its
// containers (default "io.dockervisor."). Drivers with different prefixes
// on one engine do not see each other's instances. It must end with a dot.
func WithLabelPrefix(p string) Option {
	return func(o *options) error {
		if !labelPrefixPattern.MatchString(p) {
			return fmt.Errorf("%w: label prefix %q: use lower-case letters, digits, '.' and '-', ending with '.'", hypervisor.ErrInvalidArgument, p)
		}
		o.labelPrefix = p
		return nil
	}
}

var namePrefixPattern = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`)

// WithNamePrefix sets the prefix of container names (default
// "dockervisor-"): an instance's container is named prefix+ID.
func WithNamePrefix(p string) Option {
	return func(o *options) error {
		if !namePrefixPattern.MatchString(p) {
			return fmt.Errorf("%w: name prefix %q is not a valid container name start", hypervisor.ErrInvalidArgument, p)
		}
		o.namePrefix = p
		return nil
	}
}

// WithStateDir sets the directory where the Driver keeps its durable state:
// a record per instance (soft-deleted mark, power intent) and per store
// image, under a subdirectory named after the label and name prefixes, so
// that drivers with different prefixes can share the directory. The
// default is /var/lib/dockervisor. It is created if missing.
func WithStateDir(dir string) Option {
	return func(o *options) error {
		if dir == "" {
			return fmt.Errorf("%w: empty state directory", hypervisor.ErrInvalidArgument)
		}
		o.stateDir = dir
		return nil
	}
}

// WithStopTimeout sets how long a graceful stop waits before killing, when
// the call's options leave it zero. The default is 10 seconds.
func WithStopTimeout(d time.Duration) Option {
	return func(o *options) error {
		if d <= 0 {
			return fmt.Errorf("%w: stop timeout %s must be positive", hypervisor.ErrInvalidArgument, d)
		}
		o.stopTimeout = d
		return nil
	}
}

// WithNodeName sets the node name reported by AvailableNodes. The default
// is the engine's host name.
func WithNodeName(name string) Option {
	return func(o *options) error {
		if !hypervisor.ValidHostname(name) {
			return fmt.Errorf("%w: node name %q is not a host name", hypervisor.ErrInvalidArgument, name)
		}
		o.nodeName = name
		return nil
	}
}

var runtimeNamePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.+-]*$`)

// WithRuntime makes every instance the Driver creates run under the
// engine's OCI runtime name (the container's HostConfig.Runtime), such as
// "crun", a faster runtime than the default runc for the engine's part of
// a boot, or a sandboxing one. The engine must have the runtime registered
// ("runtimes" in its daemon.json, or dockerd --add-runtime): the first
// create checks the engine's list and fails with
// hypervisor.ErrNotSupported, naming the runtimes the engine has, when it
// is not there. Instances created earlier keep the runtime they were
// created with. The default is the engine's default runtime.
func WithRuntime(name string) Option {
	return func(o *options) error {
		if !runtimeNamePattern.MatchString(name) {
			return fmt.Errorf("%w: runtime name %q: use letters, digits, '_', '.', '+' and '-'", hypervisor.ErrInvalidArgument, name)
		}
		o.runtime = name
		return nil
	}
}
