package metadata

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/dockervisor/dockervisor/configdrive"
	"github.com/dockervisor/dockervisor/errclass"
)

// ErrUnavailable means a Client could not reach the service. It is an
// [errclass.ErrUnavailable].
var ErrUnavailable = errclass.New("metadata: service unavailable", errclass.ErrUnavailable)

// controlPrefix is the path of the control API's instances.
const controlPrefix = "/v1/instances/"

// ServeControl answers the control API on ln, through which programs
// other than the one running the service register instances (see
// Client), until the Listener or the Service is closed:
//
//	PUT    /v1/instances/<uuid>  the boot data (configdrive.Instance as JSON): 204; 400 invalid, 409 address in use
//	DELETE /v1/instances/<uuid>  204
//	GET    /v1/instances/        the registered UUIDs as a JSON list
//
// Whoever can connect can publish metadata to instances: serve it on a
// socket only the service's user can reach (ListenControl makes one).
func (s *Service) ServeControl(ln net.Listener) (*Listener, error) {
	return s.serve(ln, "", http.HandlerFunc(s.control))
}

// ListenControl serves the control API on a new Unix socket at path
// (mode 0600; a stale socket file there is replaced).
func (s *Service) ListenControl(ctx context.Context, path string) (*Listener, error) {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("metadata: %w", err)
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "unix", path)
	if err != nil {
		return nil, fmt.Errorf("metadata: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("metadata: %w", err)
	}
	return s.ServeControl(ln)
}

func (s *Service) control(w http.ResponseWriter, r *http.Request) {
	uuid, ok := strings.CutPrefix(r.URL.Path, controlPrefix)
	if !ok {
		http.NotFound(w, r)
		return
	}
	status := http.StatusNoContent
	var err error
	switch {
	case uuid == "" && r.Method == http.MethodGet:
		w.Header().Set("Content-Type", appJSON)
		_ = json.NewEncoder(w).Encode(s.Instances())
		return
	case uuid != "" && r.Method == http.MethodPut:
		var in configdrive.Instance
		dec := json.NewDecoder(io.LimitReader(r.Body, 16<<20))
		if err = dec.Decode(&in); err != nil {
			err = fmt.Errorf("%w: %w", ErrInvalidInstance, err)
		} else if in.UUID != uuid {
			err = fmt.Errorf("%w: UUID %q in a request for %q", ErrInvalidInstance, in.UUID, uuid)
		} else {
			err = s.Register(r.Context(), in)
		}
	case uuid != "" && r.Method == http.MethodDelete:
		err = s.Unregister(r.Context(), uuid)
	default:
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	switch {
	case errors.Is(err, ErrInvalidInstance):
		status = http.StatusBadRequest
	case errors.Is(err, ErrAddressInUse):
		status = http.StatusConflict
	case errors.Is(err, ErrClosed):
		status = http.StatusServiceUnavailable
	case err != nil:
		status = http.StatusInternalServerError
	}
	if err != nil {
		http.Error(w, err.Error(), status)
		return
	}
	w.WriteHeader(status)
}

// Client registers instances with a Service run by another program,
// through its control socket (see ServeControl). Its Register and
// Unregister are the Service's, so either can be given to a backend (the
// Docker backend's WithMetadataService).
type Client struct {
	hc *http.Client
}

// NewClient returns a Client of the control socket at path. It does no I/O.
func NewClient(path string) *Client {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		},
		MaxIdleConns:    2,
		IdleConnTimeout: 30 * time.Second,
	}
	return &Client{hc: &http.Client{Transport: tr, Timeout: time.Minute}}
}

// Register publishes in's metadata; see Service.Register. An unreachable
// service is ErrUnavailable.
func (c *Client) Register(ctx context.Context, in configdrive.Instance) error {
	b, err := json.Marshal(in)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidInstance, err)
	}
	return c.do(ctx, http.MethodPut, in.UUID, b)
}

// Unregister stops serving instance uuid; see Service.Unregister.
func (c *Client) Unregister(ctx context.Context, uuid string) error {
	return c.do(ctx, http.MethodDelete, uuid, nil)
}

// Close releases the Client's idle connections.
func (c *Client) Close() error {
	c.hc.CloseIdleConnections()
	return nil
}

func (c *Client) do(ctx context.Context, method, uuid string, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, method, "http://metadata"+controlPrefix+url.PathEscape(uuid), bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidInstance, err)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	text := strings.TrimSpace(string(msg))
	switch resp.StatusCode {
	case http.StatusNoContent, http.StatusOK:
		return nil
	case http.StatusBadRequest:
		return fmt.Errorf("%w: %s", ErrInvalidInstance, text)
	case http.StatusConflict:
		return fmt.Errorf("%w: %s", ErrAddressInUse, text)
	}
	return fmt.Errorf("%w: %s: %s", ErrUnavailable, resp.Status, text)
}
