package testenv

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// TLSFiles are the PEM files of one TLS identity, laid out as Docker's
// DOCKER_CERT_PATH expects: ca.pem, cert.pem and key.pem in Dir.
type TLSFiles struct {
	Dir      string
	CAFile   string // the CA that signs the peer's certificate
	CertFile string
	KeyFile  string
}

// certAuthority is a CA made at test time.
type certAuthority struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newCA(name string) (*certAuthority, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &certAuthority{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}, nil
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	return n
}

// issue signs a leaf certificate: a server certificate for 127.0.0.1 when
// server is true, else a client certificate. It returns the PEM
// certificate and key.
func (ca *certAuthority) issue(cn string, server bool) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
		tmpl.DNSNames = []string{"localhost"}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		return nil, nil, err
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), nil
}

// writeIdentity writes ca.pem, cert.pem and key.pem into dir.
func writeIdentity(dir string, caPEM, certPEM, keyPEM []byte) (TLSFiles, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return TLSFiles{}, err
	}
	f := TLSFiles{
		Dir:      dir,
		CAFile:   filepath.Join(dir, "ca.pem"),
		CertFile: filepath.Join(dir, "cert.pem"),
		KeyFile:  filepath.Join(dir, "key.pem"),
	}
	for _, w := range []struct {
		path string
		data []byte
	}{{f.CAFile, caPEM}, {f.CertFile, certPEM}, {f.KeyFile, keyPEM}} {
		if err := os.WriteFile(w.path, w.data, 0o600); err != nil {
			return TLSFiles{}, err
		}
	}
	return f, nil
}

// engineTLS is the TLS material of a TCP engine: its server identity, a
// good client identity, and a client identity from an unrelated CA.
type engineTLS struct {
	server, client, wrongCA TLSFiles
}

// makeEngineTLS makes a CA, a server certificate with IP:127.0.0.1 in its
// SAN and a client certificate signed by it, plus a second CA with its own
// client certificate, under dir.
func makeEngineTLS(dir string) (engineTLS, error) {
	ca, err := newCA("dockervisor test CA")
	if err != nil {
		return engineTLS{}, err
	}
	other, err := newCA("unrelated test CA")
	if err != nil {
		return engineTLS{}, err
	}
	var out engineTLS
	scert, skey, err := ca.issue("127.0.0.1", true)
	if err != nil {
		return engineTLS{}, err
	}
	if out.server, err = writeIdentity(filepath.Join(dir, "server"), ca.pem, scert, skey); err != nil {
		return engineTLS{}, err
	}
	ccert, ckey, err := ca.issue("dockervisor-client", false)
	if err != nil {
		return engineTLS{}, err
	}
	if out.client, err = writeIdentity(filepath.Join(dir, "client"), ca.pem, ccert, ckey); err != nil {
		return engineTLS{}, err
	}
	wcert, wkey, err := other.issue("dockervisor-client", false)
	if err != nil {
		return engineTLS{}, err
	}
	if out.wrongCA, err = writeIdentity(filepath.Join(dir, "wrong-ca"), other.pem, wcert, wkey); err != nil {
		return engineTLS{}, fmt.Errorf("wrong-CA identity: %w", err)
	}
	return out, nil
}
