package docker

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"

	"github.com/moby/moby/client"
	"github.com/moby/moby/client/pkg/versions"

	"github.com/dockervisor/dockervisor/hypervisor"
)

// MinAPIVersion is the oldest engine API the Driver works with.
const MinAPIVersion = "1.40"

// APIClient is the subset of the moby client that the Driver uses. A
// *client.Client satisfies it; WithAPIClient takes another for tests.
type APIClient interface {
	Ping(ctx context.Context, options client.PingOptions) (client.PingResult, error)
	ClientVersion() string
	Info(ctx context.Context, options client.InfoOptions) (client.SystemInfoResult, error)
	ServerVersion(ctx context.Context, options client.ServerVersionOptions) (client.ServerVersionResult, error)
	ContainerCreate(ctx context.Context, options client.ContainerCreateOptions) (client.ContainerCreateResult, error)
	ContainerInspect(ctx context.Context, id string, options client.ContainerInspectOptions) (client.ContainerInspectResult, error)
	ContainerList(ctx context.Context, options client.ContainerListOptions) (client.ContainerListResult, error)
	ContainerStart(ctx context.Context, id string, options client.ContainerStartOptions) (client.ContainerStartResult, error)
	ContainerStop(ctx context.Context, id string, options client.ContainerStopOptions) (client.ContainerStopResult, error)
	ContainerKill(ctx context.Context, id string, options client.ContainerKillOptions) (client.ContainerKillResult, error)
	ContainerRemove(ctx context.Context, id string, options client.ContainerRemoveOptions) (client.ContainerRemoveResult, error)
	ContainerPause(ctx context.Context, id string, options client.ContainerPauseOptions) (client.ContainerPauseResult, error)
	ContainerUnpause(ctx context.Context, id string, options client.ContainerUnpauseOptions) (client.ContainerUnpauseResult, error)
	ContainerWait(ctx context.Context, id string, options client.ContainerWaitOptions) client.ContainerWaitResult
	ContainerLogs(ctx context.Context, id string, options client.ContainerLogsOptions) (client.ContainerLogsResult, error)
	ContainerUpdate(ctx context.Context, id string, options client.ContainerUpdateOptions) (client.ContainerUpdateResult, error)
	ContainerStats(ctx context.Context, id string, options client.ContainerStatsOptions) (client.ContainerStatsResult, error)
	ContainerCommit(ctx context.Context, id string, options client.ContainerCommitOptions) (client.ContainerCommitResult, error)
	ContainerRename(ctx context.Context, id string, options client.ContainerRenameOptions) (client.ContainerRenameResult, error)
	ImageSave(ctx context.Context, refs []string, opts ...client.ImageSaveOption) (client.ImageSaveResult, error)
	ImageInspect(ctx context.Context, id string, options ...client.ImageInspectOption) (client.ImageInspectResult, error)
	ImageList(ctx context.Context, options client.ImageListOptions) (client.ImageListResult, error)
	imageAPI
	guestAPI
	osAPI
	Events(ctx context.Context, options client.EventsListOptions) client.EventsResult
	Close() error
}

var _ APIClient = (*client.Client)(nil)

// newClient builds a moby client from the options. It does not dial.
func newClient(o *options) (*client.Client, error) {
	var opts []client.Opt
	if o.tls == nil {
		opts = append(opts, client.FromEnv)
	} else {
		cfg, err := tlsConfig(o.tls)
		if err != nil {
			return nil, err
		}
		host := o.host
		if host == "" {
			host = os.Getenv(client.EnvOverrideHost)
		}
		if host == "" {
			return nil, fmt.Errorf("%w: TLS needs a tcp:// docker host (WithDockerHost or DOCKER_HOST)", hypervisor.ErrInvalidArgument)
		}
		// The HTTP client goes first: WithHost configures its transport.
		opts = append(opts,
			client.WithHTTPClient(&http.Client{Transport: &http.Transport{TLSClientConfig: cfg}}),
			client.WithHost(host),
			client.WithAPIVersionFromEnv())
	}
	if o.host != "" {
		opts = append(opts, client.WithHost(o.host))
	}
	c, err := client.New(opts...)
	if err != nil {
		return nil, fmt.Errorf("%w: docker client: %w", hypervisor.ErrInvalidArgument, err)
	}
	return c, nil
}

func tlsConfig(t *TLSConfig) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: t.InsecureSkipVerify} //nolint:gosec // opt-in, documented
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("%w: TLS CA: %w", hypervisor.ErrInvalidArgument, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%w: TLS CA %s holds no PEM certificate", hypervisor.ErrInvalidArgument, t.CAFile)
		}
		cfg.RootCAs = pool
	}
	if t.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("%w: TLS client certificate: %w", hypervisor.ErrInvalidArgument, err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

// engine returns the API client after a successful ping with version
// negotiation. A failed ping is retried on the next call. No lock is held
// during the ping: concurrent first calls each ping (the client negotiates
// once), so a slow engine delays only the calls that need it.
func (d *core) engine(ctx context.Context) (APIClient, error) {
	d.conn.mu.Lock()
	closed, connected := d.conn.closed, d.conn.connected
	d.conn.mu.Unlock()
	if closed {
		return nil, fmt.Errorf("%w: driver is closed", hypervisor.ErrUnavailable)
	}
	if connected {
		return d.api, nil
	}
	ping, err := d.api.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true})
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("%w: docker engine does not answer: %w", hypervisor.ErrUnavailable, err)
	}
	if ping.APIVersion == "" || versions.LessThan(ping.APIVersion, MinAPIVersion) {
		return nil, fmt.Errorf("%w: docker engine API %q is older than %s", hypervisor.ErrUnavailable, ping.APIVersion, MinAPIVersion)
	}
	d.conn.mu.Lock()
	defer d.conn.mu.Unlock()
	if d.conn.closed {
		return nil, fmt.Errorf("%w: driver is closed", hypervisor.ErrUnavailable)
	}
	d.conn.connected = true
	return d.api, nil
}
