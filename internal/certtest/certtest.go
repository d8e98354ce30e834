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
	"fmt"
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
	c, err := Make(dir, names...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Make is New for callers without a testing.TB (the fault-injection harness).
func Make(dir string, names ...string) (*Certs, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("certtest: %w", err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("certtest: %w", err)
	}
	sn, err := serial()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          sn,
		Subject:               pkix.Name{CommonName: "tally test CA " + filepath.Base(dir)},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("certtest: create CA: %w", err)
	}
	caCert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("certtest: %w", err)
	}
	c := &Certs{Dir: dir, CA: filepath.Join(dir, "ca.crt"), Pairs: map[string]Pair{}, caCert: caCert, caKey: key}
	if err := writePEM(c.CA, "CERTIFICATE", der, 0o644); err != nil {
		return nil, err
	}
	for _, n := range names {
		if _, err := c.issue(n); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// Issue makes a new certificate and key for name and writes them to dir/NAME.crt and
// dir/NAME.key, replacing any earlier ones the way a rotation does (written beside, then
// renamed over). It returns the files and records them in Pairs.
func (c *Certs) Issue(t testing.TB, name string) Pair {
	t.Helper()
	p, err := c.issue(name)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func (c *Certs) issue(name string) (Pair, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return Pair{}, fmt.Errorf("certtest: %w", err)
	}
	sn, err := serial()
	if err != nil {
		return Pair{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: sn,
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
		return Pair{}, fmt.Errorf("certtest: issue %s: %w", name, err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return Pair{}, fmt.Errorf("certtest: %w", err)
	}
	p := Pair{Cert: filepath.Join(c.Dir, name+".crt"), Key: filepath.Join(c.Dir, name+".key")}
	if err := writePEM(p.Key, "PRIVATE KEY", kder, 0o600); err != nil {
		return Pair{}, err
	}
	if err := writePEM(p.Cert, "CERTIFICATE", der, 0o644); err != nil {
		return Pair{}, err
	}
	c.Pairs[name] = p
	return p, nil
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

func serial() (*big.Int, error) {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return nil, fmt.Errorf("certtest: %w", err)
	}
	return n, nil
}

// writePEM writes one PEM block to a temporary file beside path, then renames it over path.
func writePEM(path, typ string, der []byte, mode os.FileMode) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), mode); err != nil {
		return fmt.Errorf("certtest: %w", err)
	}
	if err := os.Chmod(tmp, mode); err != nil {
		return fmt.Errorf("certtest: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("certtest: %w", err)
	}
	return nil
}
