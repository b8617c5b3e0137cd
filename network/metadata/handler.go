package metadata

import (
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
)

// Handler returns the service's HTTP handler for requests that reach it
// through the network networkID (a listener in that network's service
// namespace, say): the request's source address names the instance, as
// Neutron's metadata proxy tells Nova. A request from an address that is
// no registered instance's on that network gets 404 for every path but
// "/", which lists the EC2 versions to anyone, as Nova's does.
//
// The answers are Nova's (nova/api/metadata/handler.py and base.py),
// statuses included: 404 for an unknown version, file or key, 500 for a
// key under a leaf of the EC2 tree (where Nova's lookup fails the same
// way); any method reads a path, except the password, which takes GET
// and POST only (400 otherwise), 409 for a second POST and 400 for one
// over MaxPasswordBytes.
func (s *Service) Handler(networkID string) http.Handler {
	return &handler{s: s, network: networkID}
}

type handler struct {
	s       *Service
	network string
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if normpath(r.URL.Path) == "/" {
		write(w, ec2Listing())
		return
	}
	e := h.instance(r)
	if e == nil {
		h.s.opts.log.Debug("metadata: request from an unknown address", "network", h.network, "remote", r.RemoteAddr, "path", r.URL.Path)
		write(w, notFound)
		return
	}
	resp, isPassword := e.data.lookup(r.URL.Path, h.s.opts.now())
	if isPassword {
		resp = h.password(r, e)
	}
	write(w, resp)
}

// instance returns the instance the request comes from.
func (h *handler) instance(r *http.Request) *entry {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return nil
	}
	return h.s.find(h.network, ip)
}

// password answers /openstack/<version>/password as Nova's
// handle_password does.
func (h *handler) password(r *http.Request, e *entry) response {
	switch r.Method {
	case http.MethodGet:
		// Nova's password handler returns a bare string, which webob puts
		// in its default (HTML) response.
		return ok(textHTML, []byte(h.s.password(e)))
	case http.MethodPost:
		if h.s.password(e) != "" {
			return response{status: http.StatusConflict}
		}
		if r.ContentLength > MaxPasswordBytes {
			return response{status: http.StatusBadRequest}
		}
		body, err := io.ReadAll(io.LimitReader(r.Body, MaxPasswordBytes+1))
		if err != nil || len(body) > MaxPasswordBytes {
			return response{status: http.StatusBadRequest}
		}
		set, err := h.s.setPassword(e, string(body))
		switch {
		case err != nil:
			h.s.opts.log.Warn("metadata: keep a posted password", "instance", e.in.UUID, "err", err)
			return serverError
		case !set:
			return response{status: http.StatusConflict}
		}
		return ok(textHTML, nil)
	}
	return response{status: http.StatusBadRequest}
}

// write sends resp; an error status gets a short text body, as webob's.
func write(w http.ResponseWriter, resp response) {
	body, ctype := resp.body, resp.ctype
	if resp.status != http.StatusOK {
		body = []byte(strconv.Itoa(resp.status) + " " + http.StatusText(resp.status) + "\n")
		ctype = textPlain
	}
	if ctype == "" {
		ctype = textPlain
	}
	w.Header().Set("Content-Type", ctype)
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(resp.status)
	_, _ = w.Write(body)
}
