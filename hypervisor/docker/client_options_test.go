package docker

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/moby/moby/client"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dockervisor/dockervisor/configdrive"
	"github.com/dockervisor/dockervisor/hypervisor"
	"github.com/dockervisor/dockervisor/internal/testenv"
)

func TestUnreachableEngine(t *testing.T) {
	d, err := New(WithDockerHost("unix://"+filepath.Join(t.TempDir(), "none.sock")), WithStateDir(t.TempDir()))
	require.NoError(t, err, "New does not dial")
	defer d.Close()
	_, err = d.Spawn(t.Context(), hypervisor.InstanceSpec{ID: "x", Image: "img"})
	require.ErrorIs(t, err, hypervisor.ErrUnavailable)
	_, err = d.List(t.Context(), hypervisor.ListOptions{})
	require.ErrorIs(t, err, hypervisor.ErrUnavailable)
	var oe *hypervisor.OpError
	require.ErrorAs(t, err, &oe)
	assert.Equal(t, "list", oe.Op)
}

// oldEngine answers pings like an engine whose API is too old.
type oldEngine struct{ APIClient }

func (oldEngine) Ping(context.Context, client.PingOptions) (client.PingResult, error) {
	return client.PingResult{APIVersion: "1.39"}, nil
}
func (oldEngine) Close() error { return nil }

func TestEngineTooOld(t *testing.T) {
	d, err := New(WithAPIClient(oldEngine{}), WithStateDir(t.TempDir()))
	require.NoError(t, err)
	_, err = d.Info(t.Context(), "x")
	require.ErrorIs(t, err, hypervisor.ErrUnavailable)
	assert.Contains(t, err.Error(), "1.39", "the message names the engine's API version")
}

func TestBadOptions(t *testing.T) {
	for name, opt := range map[string]Option{
		"empty host":      WithDockerHost(""),
		"bad label":       WithLabelPrefix("No.Dot"),
		"bad name prefix": WithNamePrefix("/x"),
		"zero timeout":    WithStopTimeout(0),
		"nil logger":      WithLogger(nil),
		"half client key": WithTLS(TLSConfig{CertFile: "c.pem"}),
		"bad node name":   WithNodeName("bad name"),
		"bad dhcp_domain": WithConfigDriveOptions(configdrive.WithDHCPDomain("a b")),
	} {
		t.Run(name, func(t *testing.T) {
			_, err := New(opt, WithStateDir(t.TempDir()))
			require.ErrorIs(t, err, hypervisor.ErrInvalidArgument)
		})
	}
}

func TestClosedDriver(t *testing.T) {
	e := newEnv(t)
	require.NoError(t, e.drv.Close())
	require.NoError(t, e.drv.Close(), "Close is idempotent")
	_, err := e.drv.List(t.Context(), hypervisor.ListOptions{})
	require.ErrorIs(t, err, hypervisor.ErrUnavailable)
}

// TestTLSVerification runs the real engine behind a TLS proxy: with the
// right CA the Driver works; with another CA it refuses the server; with
// verification turned off it connects anyway.
func TestTLSVerification(t *testing.T) {
	cli := testenv.MustHaveDocker(t)
	dir := t.TempDir()
	caPEM, serverCert := makeCerts(t)
	caFile := filepath.Join(dir, "ca.pem")
	require.NoError(t, os.WriteFile(caFile, caPEM, 0o600))
	otherCA, _ := makeCerts(t)
	otherFile := filepath.Join(dir, "other.pem")
	require.NoError(t, os.WriteFile(otherFile, otherCA, 0o600))

	engine, err := url.Parse("http://docker")
	require.NoError(t, err)
	proxy := httputil.NewSingleHostReverseProxy(engine)
	sock := cli.DaemonHost()
	proxy.Transport = &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var dl net.Dialer
		return dl.DialContext(ctx, "unix", sock[len("unix://"):])
	}}
	srv := httptest.NewUnstartedServer(proxy)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // refused handshakes are expected
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{serverCert}, MinVersion: tls.VersionTLS12}
	srv.StartTLS()
	defer srv.Close()
	host := "tcp://" + srv.Listener.Addr().String()

	list := func(cfg TLSConfig) error {
		d, err := New(WithDockerHost(host), WithTLS(cfg), WithStateDir(t.TempDir()), WithLabelPrefix("io.dockervisor.tlstest."))
		require.NoError(t, err)
		defer d.Close()
		_, err = d.List(t.Context(), hypervisor.ListOptions{})
		return err
	}
	require.NoError(t, list(TLSConfig{CAFile: caFile}))
	err = list(TLSConfig{CAFile: otherFile})
	require.ErrorIs(t, err, hypervisor.ErrUnavailable)
	var uerr x509.UnknownAuthorityError
	assert.True(t, errors.As(err, &uerr), "the chain holds the verification failure: %v", err)
	require.NoError(t, list(TLSConfig{InsecureSkipVerify: true}))
}

// makeCerts returns a self-signed CA (PEM) and a server certificate for
// 127.0.0.1 signed by it.
func makeCerts(t *testing.T) ([]byte, tls.Certificate) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	require.NoError(t, err)
	ca, err := x509.ParseCertificate(caDER)
	require.NoError(t, err)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "engine"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		KeyUsage: x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	require.NoError(t, err)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}
