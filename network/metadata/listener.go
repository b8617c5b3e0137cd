package metadata

import (
	"errors"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"
)

// Address is where instances reach Nova's metadata service.
const Address = "169.254.169.254:80"

// Listener is the service answering on one listener for one network.
type Listener struct {
	s       *Service
	ln      net.Listener
	srv     *http.Server
	network string
	done    chan struct{}
	once    sync.Once
	err     error
}

// Serve answers requests on ln as the service of network networkID (see
// Handler) until the Listener or the Service is closed. It takes ln over:
// closing the Listener closes ln.
func (s *Service) Serve(ln net.Listener, networkID string) (*Listener, error) {
	return s.serve(ln, networkID, s.Handler(networkID))
}

func (s *Service) serve(ln net.Listener, networkID string, h http.Handler) (*Listener, error) {
	l := &Listener{
		s: s, ln: ln, network: networkID, done: make(chan struct{}),
		srv: &http.Server{
			Handler:           h,
			ReadHeaderTimeout: 10 * time.Second,
			ReadTimeout:       30 * time.Second,
			WriteTimeout:      30 * time.Second,
			IdleTimeout:       90 * time.Second,
			MaxHeaderBytes:    64 << 10,
			ErrorLog:          slog.NewLogLogger(s.opts.log.Handler(), slog.LevelDebug),
		},
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		ln.Close()
		return nil, ErrClosed
	}
	s.listeners[l] = struct{}{}
	s.mu.Unlock()
	go func() {
		defer close(l.done)
		if err := l.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.opts.log.Warn("metadata: listener stopped", "network", networkID, "addr", ln.Addr().String(), "err", err)
			l.err = err
		}
	}()
	return l, nil
}

// Addr returns the listener's address.
func (l *Listener) Addr() net.Addr { return l.ln.Addr() }

// Network returns the network the listener serves.
func (l *Listener) Network() string { return l.network }

// Close stops the listener and its connections and waits for them. It is
// idempotent.
func (l *Listener) Close() error {
	l.once.Do(func() {
		err := l.srv.Close()
		<-l.done
		l.s.mu.Lock()
		delete(l.s.listeners, l)
		l.s.mu.Unlock()
		l.err = errors.Join(l.err, err)
	})
	return l.err
}
