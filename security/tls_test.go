package security

import (
	"crypto/tls"
	"errors"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tally-db/tally/internal/certtest"
)

func quietLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

func mustLoad(t *testing.T, f Files) *TLS {
	t.Helper()
	tl, err := Load(f, quietLogger())
	if err != nil {
		t.Fatal(err)
	}
	return tl
}

func files(c *certtest.Certs, name string) Files {
	return Files{Cert: c.Pairs[name].Cert, Key: c.Pairs[name].Key, CA: c.CA}
}

// handshake runs a TLS handshake between the two configurations over a pipe and returns
// each side's error and the server's and client's view of the connection.
//
//lint:ignore ST1008 both errors are results, not failures of the helper
func handshake(t *testing.T, server, client *tls.Config) (serverErr, clientErr error, ss, cs tls.ConnectionState) {
	t.Helper()
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	deadline := time.Now().Add(5 * time.Second)
	a.SetDeadline(deadline)
	b.SetDeadline(deadline)
	srv, cli := tls.Server(a, server), tls.Client(b, client)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		serverErr = srv.Handshake()
		ss = srv.ConnectionState()
		if serverErr != nil {
			a.Close() // the client may still be waiting for the server's flight
			return
		}
		_, _ = srv.Write([]byte{1})
	}()
	clientErr = cli.Handshake()
	if clientErr == nil {
		// TLS 1.3: the client is done before the server has checked its certificate; a
		// read sees the server's verdict.
		_, _ = cli.Read(make([]byte, 1))
	}
	cs = cli.ConnectionState()
	b.Close()
	wg.Wait()
	return serverErr, clientErr, ss, cs
}

func serialOf(cs tls.ConnectionState) *big.Int {
	if len(cs.PeerCertificates) == 0 {
		return nil
	}
	return cs.PeerCertificates[0].SerialNumber
}

func TestTLS_ReloadsRotatedCertificates(t *testing.T) {
	certs := certtest.New(t, filepath.Join(t.TempDir(), "ca"), "n1", "n2")
	s, c := mustLoad(t, files(certs, "n1")), mustLoad(t, files(certs, "n2"))
	var clock time.Time = time.Now()
	s.now = func() time.Time { return clock }
	c.now = func() time.Time { return clock }

	check := func(what string, wantServer, wantClient *big.Int) {
		t.Helper()
		serr, cerr, ss, cs := handshake(t, s.RaftServerConfig(), c.ClientConfig())
		if serr != nil || cerr != nil {
			t.Fatalf("%s: handshake: server %v, client %v", what, serr, cerr)
		}
		if got := serialOf(cs); got.Cmp(wantServer) != 0 {
			t.Errorf("%s: server presented serial %v, want %v", what, got, wantServer)
		}
		if got := serialOf(ss); got.Cmp(wantClient) != 0 {
			t.Errorf("%s: client presented serial %v, want %v", what, got, wantClient)
		}
	}
	n1, n2 := certtest.Serial(t, certs.Pairs["n1"].Cert), certtest.Serial(t, certs.Pairs["n2"].Cert)
	check("before rotation", n1, n2)

	certs.Issue(t, "n1")
	certs.Issue(t, "n2")
	r1, r2 := certtest.Serial(t, certs.Pairs["n1"].Cert), certtest.Serial(t, certs.Pairs["n2"].Cert)
	if r1.Cmp(n1) == 0 || r2.Cmp(n2) == 0 {
		t.Fatal("rotation made the same serials")
	}
	// Files are looked at once a second at most: within the second, the old pair stays.
	clock = clock.Add(checkEvery / 2)
	check("within a second of the last check", n1, n2)
	clock = clock.Add(checkEvery)
	check("after rotation", r1, r2)
}

func TestTLS_KeepsLoadedPairWhenChangeDoesNotLoad(t *testing.T) {
	certs := certtest.New(t, filepath.Join(t.TempDir(), "ca"), "n1", "n2")
	s := mustLoad(t, files(certs, "n1"))
	s.every = 0
	before := certtest.Serial(t, certs.Pairs["n1"].Cert)
	// Half a rotation: n1's key file now holds n2's key.
	other := certs.Issue(t, "n2")
	if err := copyFile(other.Key, certs.Pairs["n1"].Key); err != nil {
		t.Fatal(err)
	}
	c := mustLoad(t, files(certs, "n2"))
	serr, cerr, _, cs := handshake(t, s.RaftServerConfig(), c.ClientConfig())
	if serr != nil || cerr != nil {
		t.Fatalf("handshake: server %v, client %v", serr, cerr)
	}
	if got := serialOf(cs); got.Cmp(before) != 0 {
		t.Errorf("server presented %v, want the loaded %v", got, before)
	}
}

func TestTLS_RefusesOtherCA(t *testing.T) {
	dir := t.TempDir()
	ours := certtest.New(t, filepath.Join(dir, "ours"), "n1", "n2")
	theirs := certtest.New(t, filepath.Join(dir, "theirs"), "x")
	s, c := mustLoad(t, files(ours, "n1")), mustLoad(t, files(ours, "n2"))
	x := mustLoad(t, files(theirs, "x"))

	if serr, cerr, _, _ := handshake(t, s.RaftServerConfig(), c.ClientConfig()); serr != nil || cerr != nil {
		t.Fatalf("same CA: server %v, client %v", serr, cerr)
	}
	// The Raft port refuses a client certificate from another CA, and no certificate.
	if serr, _, _, _ := handshake(t, s.RaftServerConfig(), x.ClientConfig()); serr == nil {
		t.Error("raft port accepted a certificate from another CA")
	}
	noCert := &tls.Config{InsecureSkipVerify: true}
	if serr, _, _, _ := handshake(t, s.RaftServerConfig(), noCert); serr == nil {
		t.Error("raft port accepted a peer without a certificate")
	}
	// A node refuses a server whose certificate another CA signed.
	if _, cerr, _, _ := handshake(t, x.RaftServerConfig(), c.ClientConfig()); cerr == nil || !strings.Contains(cerr.Error(), "cluster CA") {
		t.Errorf("client accepted a server from another CA: %v", cerr)
	}
	// The API takes user clients without a certificate, but not one from another CA.
	if serr, _, _, _ := handshake(t, s.ServerConfig(), noCert); serr != nil {
		t.Errorf("API refused a client without a certificate: %v", serr)
	}
	if serr, _, _, _ := handshake(t, s.ServerConfig(), x.ClientConfig()); serr == nil {
		t.Error("API accepted a client certificate from another CA")
	}
}

func TestIsNode(t *testing.T) {
	certs := certtest.New(t, filepath.Join(t.TempDir(), "ca"), "n1", "n2")
	s, c := mustLoad(t, files(certs, "n1")), mustLoad(t, files(certs, "n2"))
	_, _, node, _ := handshake(t, s.ServerConfig(), c.ClientConfig())
	_, _, user, _ := handshake(t, s.ServerConfig(), &tls.Config{InsecureSkipVerify: true})
	for _, tc := range []struct {
		name string
		cs   *tls.ConnectionState
		want bool
	}{
		{"node certificate", &node, true},
		{"no certificate", &user, false},
		{"plain HTTP", nil, false},
	} {
		if got := IsNode(&http.Request{TLS: tc.cs}); got != tc.want {
			t.Errorf("%s: IsNode = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestLoad_Errors(t *testing.T) {
	certs := certtest.New(t, filepath.Join(t.TempDir(), "ca"), "n1", "n2")
	for _, tc := range []struct {
		name string
		f    Files
		want string
	}{
		{"no key", Files{Cert: certs.Pairs["n1"].Cert}, "--tls-key"},
		{"missing file", Files{Cert: certs.Pairs["n1"].Cert, Key: certs.Dir + "/nope.key"}, "nope.key"},
		{"key of another certificate", Files{Cert: certs.Pairs["n1"].Cert, Key: certs.Pairs["n2"].Key}, "n1.crt"},
		{"CA file without certificates", Files{Cert: certs.Pairs["n1"].Cert, Key: certs.Pairs["n1"].Key, CA: certs.Pairs["n1"].Key}, "holds no PEM certificate"},
	} {
		_, err := Load(tc.f, quietLogger())
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error naming %q", tc.name, err, tc.want)
		}
	}
}

func TestLimitListener(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := LimitListener(inner, 2)
	defer ln.Close()
	accepted := make(chan net.Conn, 8)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				close(accepted)
				return
			}
			accepted <- c
		}
	}()
	for range 3 {
		c, err := net.Dial("tcp", inner.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	first, second := <-accepted, <-accepted
	select {
	case <-accepted:
		t.Fatal("a third connection was accepted with a cap of 2")
	case <-time.After(200 * time.Millisecond):
	}
	first.Close()
	first.Close() // a second Close gives nothing back twice
	select {
	case c := <-accepted:
		c.Close()
	case <-time.After(5 * time.Second):
		t.Fatal("closing a connection did not let the next one in")
	}
	second.Close()
	ln.Close()
	for range accepted {
	}
	if _, err := ln.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Accept after Close: %v", err)
	}
}
