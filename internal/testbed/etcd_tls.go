package testbed

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// makeCerts writes, under dir, a fresh CA, the members' server certificate for 127.0.0.1 and a client
// certificate, all signed by that CA, and sets the cluster's file names and its own clients' TLS.
func (c *EtcdCluster) makeCerts(dir string) {
	c.t.Helper()
	caKey, caCert, caDER := c.issue(&x509.Certificate{
		Subject:               pkix.Name{CommonName: "testbed etcd CA"},
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}, nil, nil)
	c.CAFile = c.writePEM(dir, "ca.pem", "CERTIFICATE", caDER)
	write := func(name string, tmpl *x509.Certificate) (certFile, keyFile string) {
		key, _, der := c.issue(tmpl, caCert, caKey)
		kder, err := x509.MarshalECPrivateKey(key)
		if err != nil {
			c.t.Fatalf("etcd certificates: %v", err)
		}
		return c.writePEM(dir, name+".pem", "CERTIFICATE", der), c.writePEM(dir, name+"-key.pem", "EC PRIVATE KEY", kder)
	}
	c.serverCert, c.serverKey = write("server", &x509.Certificate{
		Subject:     pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	})
	c.ClientCertFile, c.ClientKeyFile = write("client", &x509.Certificate{
		Subject:     pkix.Name{CommonName: "testbed-client"},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	pair, err := tls.LoadX509KeyPair(c.ClientCertFile, c.ClientKeyFile)
	if err != nil {
		c.t.Fatalf("etcd certificates: %v", err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(caCert)
	c.tls = &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}
}

// issue fills in tmpl's serial and validity, signs it with parentKey as parent (itself when parent is
// nil) and returns the new key, the certificate and its DER.
func (c *EtcdCluster) issue(tmpl, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (*ecdsa.PrivateKey, *x509.Certificate, []byte) {
	c.t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		c.t.Fatalf("etcd certificates: %v", err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl.SerialNumber = serial
	tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour)
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		c.t.Fatalf("etcd certificates: %v", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		c.t.Fatalf("etcd certificates: %v", err)
	}
	return key, cert, der
}

// writePEM writes one PEM block to dir/name (0600) and returns the path.
func (c *EtcdCluster) writePEM(dir, name, typ string, der []byte) string {
	c.t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		c.t.Fatalf("etcd certificates: %v", err)
	}
	return path
}
