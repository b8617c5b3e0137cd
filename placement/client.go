package placement

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
)

// Microversion is the Placement API microversion this package speaks
// (Placement 8.0's maximum). From 1.38 an allocation carries a consumer
// type; from 1.22 allocation candidates take forbidden traits.
const Microversion = "1.39"

// NewNoAuthClient returns a Placement client for a deployment without
// keystone (Placement's auth_strategy = noauth2): every request carries
// token as X-Auth-Token, and noauth2 treats the token "admin" as an
// administrator. endpoint is Placement's root URL, such as
// "http://127.0.0.1:8778/"; a missing trailing slash is added.
func NewNoAuthClient(endpoint, token string) (*gophercloud.ServiceClient, error) {
	if !strings.HasPrefix(endpoint, "http://") && !strings.HasPrefix(endpoint, "https://") {
		return nil, fmt.Errorf("%w: placement endpoint %q is not an http(s) URL", ErrInvalidArgument, endpoint)
	}
	if token == "" {
		return nil, fmt.Errorf("%w: empty token", ErrInvalidArgument)
	}
	endpoint = gophercloud.NormalizeURL(endpoint)
	pc := &gophercloud.ProviderClient{HTTPClient: http.Client{Transport: transport(), Timeout: time.Minute}}
	pc.SetToken(token)
	return &gophercloud.ServiceClient{
		ProviderClient: pc,
		Endpoint:       endpoint,
		ResourceBase:   endpoint,
		Type:           "placement",
		Microversion:   Microversion,
	}, nil
}

// NewClient returns a Placement client authenticated by keystone with
// auth, finding Placement in the service catalog with eo (region,
// interface). The token is renewed when it expires.
func NewClient(ctx context.Context, auth gophercloud.AuthOptions, eo gophercloud.EndpointOpts) (*gophercloud.ServiceClient, error) {
	auth.AllowReauth = true
	pc, err := openstack.NewClient(auth.IdentityEndpoint)
	if err != nil {
		return nil, fmt.Errorf("%w: keystone endpoint: %w", ErrInvalidArgument, err)
	}
	pc.HTTPClient = http.Client{Transport: transport(), Timeout: time.Minute}
	if err := openstack.Authenticate(ctx, pc, auth); err != nil {
		return nil, classify("authenticate", err)
	}
	return NewClientFromProvider(pc, eo)
}

// NewClientFromProvider returns a Placement client from an authenticated
// gophercloud provider client, as other OpenStack services of the caller
// use it. Its HTTP client is used as it is: the zero http.Client's
// default transport keeps only two idle connections per host, so give
// pc.HTTPClient a transport that keeps as many as the caller runs
// requests at once (NewClient and NewNoAuthClient keep 32, and drop idle
// connections after IdleConnTimeout).
func NewClientFromProvider(pc *gophercloud.ProviderClient, eo gophercloud.EndpointOpts) (*gophercloud.ServiceClient, error) {
	sc, err := openstack.NewPlacementV1(pc, eo)
	if err != nil {
		return nil, fmt.Errorf("%w: placement endpoint: %w", ErrNotFound, err)
	}
	sc.Microversion = Microversion
	return sc, nil
}

// IdleConnTimeout is how long the HTTP clients of NewClient and
// NewNoAuthClient keep an idle connection to Placement. It is shorter
// than the keep-alive timeouts of the servers Placement runs behind
// (uwsgi's --http11-socket 4 s, Apache 5 s), so the client, not the
// server, closes an idle connection: a request written to a connection
// the server is closing fails, and Go does not resend a claim (PUT).
const IdleConnTimeout = 3 * time.Second

// transport keeps enough idle connections for concurrent schedulers, so
// every request after the first reuses one.
func transport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = 32
	t.IdleConnTimeout = IdleConnTimeout
	return t
}
