// Package certtest makes certificates for tests: a throwaway CA and certificates it signs,
// written as PEM files to a directory, the way an operator would hand them to
// `tally serve --tls-cert/--tls-key/--tls-ca`. Every test that needs certificates uses it.
package certtest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// Pair is the files of one certificate and its private key.
type Pair struct {
	Cert, Key string
}

// Certs is a CA and the certificates it issued, as files in Dir.
type Certs struct {
	// Dir holds every file.
	Dir string
	// CA is the CA certificate's PEM file (what --tls-ca and --ca take).
	CA string
	// Pairs holds the certificate and key files issued by name.
	Pairs map[string]Pair

	caCert *x509.Certificate
	caKey  *ecdsa.PrivateKey
}

// New makes a CA named after dir's base name and one certificate per name, valid for that
// name, "localhost", 127.0.0.1 and ::1, for both server and client use (a node is both).
// Files: dir/ca.crt, dir/NAME.crt and dir/NAME.key (0600). Use a different dir for each
// CA.
func New(t testing.TB, dir string, names ...string) *Certs {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatalf("certtest: %v", err)
	}
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber:          serial(t),
		Subject:               pkix.Name{CommonName: "tally test CA " + filepath.Base(dir)},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatalf("certtest: create CA: %v", err)
	}
	caCert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("certtest: %v", err)
	}
	c := &Certs{Dir: dir, CA: filepath.Join(dir, "ca.crt"), Pairs: map[string]Pair{}, caCert: caCert, caKey: key}
	writePEM(t, c.CA, "CERTIFICATE", der, 0o644)
	for _, n := range names {
		c.Issue(t, n)
	}
	return c
}

// Issue makes a new certificate and key for name and writes them to dir/NAME.crt and
// dir/NAME.key, replacing any earlier ones the way a rotation does (written beside, then
// renamed over). It returns the files and records them in Pairs.
func (c *Certs) Issue(t testing.TB, name string) Pair {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber: serial(t),
		Subject:      pkix.Name{CommonName: name},
		DNSNames:     []string{name, "localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.caCert, &key.PublicKey, c.caKey)
	if err != nil {
		t.Fatalf("certtest: issue %s: %v", name, err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatalf("certtest: %v", err)
	}
	p := Pair{Cert: filepath.Join(c.Dir, name+".crt"), Key: filepath.Join(c.Dir, name+".key")}
	writePEM(t, p.Key, "PRIVATE KEY", kder, 0o600)
	writePEM(t, p.Cert, "CERTIFICATE", der, 0o644)
	c.Pairs[name] = p
	return p
}

// Serial reads the serial number of the certificate in file, to tell which one a peer
// presented.
func Serial(t testing.TB, file string) *big.Int {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("certtest: %v", err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatalf("certtest: %s holds no PEM block", file)
	}
	cert, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatalf("certtest: %v", err)
	}
	return cert.SerialNumber
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("certtest: %v", err)
	}
	return key
}

func serial(t testing.TB) *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		t.Fatalf("certtest: %v", err)
	}
	return n
}

// writePEM writes one PEM block to a temporary file beside path, then renames it over path.
func writePEM(t testing.TB, path, typ string, der []byte, mode os.FileMode) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), mode); err != nil {
		t.Fatalf("certtest: %v", err)
	}
	if err := os.Chmod(tmp, mode); err != nil {
		t.Fatalf("certtest: %v", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatalf("certtest: %v", err)
	}
}
