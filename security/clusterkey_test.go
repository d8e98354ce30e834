package security

import (
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func writeKey(t *testing.T, text string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "cluster.key")
	if err := os.WriteFile(p, []byte(text), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
	return p
}

func copyFile(from, to string) error {
	b, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	return os.WriteFile(to, b, 0o600)
}

const testKey = "0123456789abcdef0123456789abcdef"

// challenge runs a challenge between an acceptor with key a and a dialer with key d.
func challenge(t *testing.T, a, d *ClusterKey) (acceptErr, dialErr error) {
	t.Helper()
	x, y := net.Pipe()
	defer x.Close()
	defer y.Close()
	x.SetDeadline(time.Now().Add(5 * time.Second))
	y.SetDeadline(time.Now().Add(5 * time.Second))
	done := make(chan error, 1)
	go func() {
		err := a.Challenge(x)
		x.Close()
		done <- err
	}()
	if d != nil {
		dialErr = d.Respond(y)
	} else {
		_, _ = y.Read(make([]byte, nonceBytes)) // hears the challenge, never answers
	}
	y.Close()
	return <-done, dialErr
}

func TestClusterKey_Challenge(t *testing.T) {
	k, err := LoadClusterKey(writeKey(t, testKey+"\n", 0o600))
	if err != nil {
		t.Fatal(err)
	}
	if aerr, derr := challenge(t, k, NewClusterKey([]byte(testKey))); aerr != nil || derr != nil {
		t.Fatalf("same key: acceptor %v, dialer %v", aerr, derr)
	}
	if aerr, _ := challenge(t, k, NewClusterKey([]byte(strings.ToUpper(testKey)))); !errors.Is(aerr, ErrWrongClusterKey) {
		t.Errorf("wrong key: %v, want ErrWrongClusterKey", aerr)
	}
	if aerr, _ := challenge(t, k, nil); !errors.Is(aerr, ErrWrongClusterKey) {
		t.Errorf("no answer: %v, want ErrWrongClusterKey", aerr)
	}
}

func TestClusterKey_Header(t *testing.T) {
	k := NewClusterKey([]byte(testKey))
	r, _ := http.NewRequest(http.MethodGet, "http://127.0.0.1/", nil)
	if k.Valid(r) {
		t.Error("a request without the header is valid")
	}
	k.SetHeader(r)
	if !k.Valid(r) {
		t.Error("a request with the header is not valid")
	}
	if v := r.Header.Get(ClusterKeyHeader); strings.Contains(v, testKey) {
		t.Errorf("the header carries the key itself: %q", v)
	}
	if NewClusterKey([]byte(testKey + "x")).Valid(r) {
		t.Error("another key accepts the header")
	}
	r.Header.Set(ClusterKeyHeader, r.Header.Get(ClusterKeyHeader)[1:])
	if k.Valid(r) {
		t.Error("a truncated header is valid")
	}
}

func TestLoadClusterKey_Refuses(t *testing.T) {
	for _, tc := range []struct {
		name, text string
		mode       os.FileMode
		want       string
	}{
		{"readable by others", testKey, 0o644, "readable by group or others (mode 0644)"},
		{"readable by group", testKey, 0o640, "chmod 600"},
		{"empty", " \n", 0o600, "is empty"},
		{"short", "secret", 0o600, "at least 16"},
	} {
		_, err := LoadClusterKey(writeKey(t, tc.text, tc.mode))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error with %q", tc.name, err, tc.want)
		}
	}
	if _, err := LoadClusterKey(filepath.Join(t.TempDir(), "none")); err == nil {
		t.Error("a missing key file loaded")
	}
}
