package security

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

func TestParse_RefusesBadEntries(t *testing.T) {
	hash, err := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, file, want string
	}{
		{"not a list", `{"username":"a"}`, "want a JSON list"},
		{"empty list", `[]`, "no users"},
		{"trailing data", `[{"username":"a","password":"p","perms":["read"]}] []`, "after the list"},
		{"unknown field", `[{"username":"a","password":"p","perms":["read"],"role":"x"}]`, `unknown field "role"`},
		{"empty name", `[{"username":"","password":"p","perms":["read"]}]`, `entry 0 (""): "username" is empty`},
		{"colon in name", `[{"username":"a:b","password":"p","perms":["read"]}]`, `entry 0 ("a:b"): "username" has ':' or '/'`},
		{"slash in name", `[{"username":"a/b","password":"p","perms":["read"]}]`, `"username" has ':' or '/'`},
		{"space in name", `[{"username":"a b","password":"p","perms":["read"]}]`, `"username" has spaces`},
		{"duplicate", `[{"username":"a","password":"p","perms":["read"]},{"username":"a","password":"q","perms":["write"]}]`, `entry 1 ("a"): duplicate username`},
		{"unknown perm", `[{"username":"a","password":"p","perms":["read","root"]}]`, `entry 0 ("a"): unknown permission "root"`},
		{"no perms", `[{"username":"a","password":"p","perms":[]}]`, `"perms" is empty`},
		{"both passwords", `[{"username":"a","password":"p","password_hash":"` + string(hash) + `","perms":["read"]}]`, "not both"},
		{"neither password", `[{"username":"a","perms":["read"]}]`, `set "password" or "password_hash"`},
		{"bad hash", `[{"username":"a","password_hash":"$2a$nope","perms":["read"]}]`, "not a bcrypt hash"},
		{"short token", `[{"username":"a","password":"p","token":"short","perms":["read"]}]`, "shorter than 16 bytes"},
		{"same token", `[{"username":"a","password":"p","token":"0123456789abcdef","perms":["read"]},{"username":"b","password":"p","token":"0123456789abcdef","perms":["read"]}]`, `entry 1 ("b"): same token as user "a"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseUsers([]byte(c.file))
			if err == nil || !strings.Contains(err.Error(), c.want) || !errors.Is(err, ErrUsersFile) {
				t.Fatalf("got %v, want an ErrUsersFile containing %q", err, c.want)
			}
		})
	}
}

func TestLoad_NamesTheFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "users.json")
	if err := os.WriteFile(path, []byte(`[{"username":"a","perms":["read"]}]`), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := LoadUsers(path)
	if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), `entry 0 ("a")`) {
		t.Fatalf("got %v", err)
	}
	if _, err := LoadUsers(filepath.Join(t.TempDir(), "missing.json")); err == nil || !strings.Contains(err.Error(), "missing.json") {
		t.Fatalf("missing file: %v", err)
	}
}

func TestUsers_PasswordsTokensAndPerms(t *testing.T) {
	hash, err := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	us, err := ParseUsers(fmt.Appendf(nil, `[
		{"username":"reader","password":"r-pass","perms":["read"]},
		{"username":"hashed","password_hash":%q,"perms":["write","read"]},
		{"username":"root","password":"x","token":"root-token-0123456789","perms":["all"]}
	]`, hash))
	if err != nil {
		t.Fatal(err)
	}
	if got := us.Names(); strings.Join(got, ",") != "hashed,reader,root" {
		t.Errorf("names %v", got)
	}
	checks := []struct {
		user, password string
		want           bool
	}{
		{"reader", "r-pass", true},
		{"reader", "r-pas", false},
		{"reader", "r-pass ", false},
		{"reader", "", false},
		{"hashed", "s3cret", true},
		{"hashed", "s3cret", true}, // cached
		{"hashed", "S3cret", false},
		{"nobody", "r-pass", false},
		{"root", "root-token-0123456789", false}, // a token is not a password
	}
	for _, c := range checks {
		if got := us.Check(c.user, c.password); got != c.want {
			t.Errorf("Check(%q, %q) = %v, want %v", c.user, c.password, got, c.want)
		}
	}
	if n := us.cached(); n != 2 {
		t.Errorf("cached bcrypt outcomes: %d, want 2 (one right, one wrong password)", n)
	}
	if u, ok := us.CheckToken("root-token-0123456789"); !ok || u != "root" {
		t.Errorf("token: %q %v", u, ok)
	}
	if _, ok := us.CheckToken("root-token-012345678"); ok {
		t.Error("a token prefix was accepted")
	}
	perms := []struct {
		user, perm string
		want       bool
	}{
		{"reader", PermRead, true}, {"reader", PermWrite, false}, {"reader", PermAdmin, false},
		{"hashed", PermWrite, true}, {"hashed", PermRead, true}, {"hashed", PermAdmin, false},
		{"root", PermRead, true}, {"root", PermWrite, true}, {"root", PermAdmin, true},
		{"nobody", PermRead, false},
	}
	for _, c := range perms {
		if got := us.Allowed(c.user, c.perm); got != c.want {
			t.Errorf("Allowed(%q, %q) = %v, want %v", c.user, c.perm, got, c.want)
		}
	}

	req := func(h string) *http.Request {
		r, _ := http.NewRequest(http.MethodGet, "/", nil)
		if h != "" {
			r.Header.Set("Authorization", h)
		}
		return r
	}
	basic := func(u, p string) *http.Request {
		r := req("")
		r.SetBasicAuth(u, p)
		return r
	}
	auths := []struct {
		name string
		r    *http.Request
		want string
	}{
		{"basic", basic("hashed", "s3cret"), "hashed"},
		{"basic wrong", basic("hashed", "nope"), ""},
		{"bearer", req("Bearer root-token-0123456789"), "root"},
		{"bearer lower case", req("bearer root-token-0123456789"), "root"},
		{"bearer wrong", req("Bearer root-token-0123456780"), ""},
		{"none", req(""), ""},
		{"other scheme", req("Digest x"), ""},
	}
	for _, c := range auths {
		u, ok := us.Authenticate(c.r)
		if ok != (c.want != "") || u != c.want {
			t.Errorf("%s: %q %v, want %q", c.name, u, ok, c.want)
		}
	}
}

func TestUsers_BcryptCacheIsBounded(t *testing.T) {
	hash, err := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	us, err := ParseUsers(fmt.Appendf(nil, `[{"username":"u","password_hash":%q,"perms":["read"]}]`, hash))
	if err != nil {
		t.Fatal(err)
	}
	us.cacheMax = 8 // bcrypt is slow under -race: a small bound shows the same
	for i := range us.cacheMax + 10 {
		us.Check("u", fmt.Sprintf("wrong-%d", i))
	}
	if n := us.cached(); n != us.cacheMax {
		t.Fatalf("cache holds %d outcomes, want the bound %d", n, us.cacheMax)
	}
	if !us.Check("u", "pw") {
		t.Fatal("right password refused after the cache filled")
	}
}

// BenchmarkUsers_Check: what authenticating a request costs, per kind of password.
func BenchmarkUsers_Check(b *testing.B) {
	hash, err := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.DefaultCost)
	if err != nil {
		b.Fatal(err)
	}
	us, err := ParseUsers(fmt.Appendf(nil, `[{"username":"plain","password":"pw","perms":["read"]},{"username":"hashed","password_hash":%q,"perms":["read"]}]`, hash))
	if err != nil {
		b.Fatal(err)
	}
	b.Run("plain", func(b *testing.B) {
		for b.Loop() {
			us.Check("plain", "pw")
		}
	})
	b.Run("bcrypt-cached", func(b *testing.B) {
		us.Check("hashed", "pw")
		for b.Loop() {
			us.Check("hashed", "pw")
		}
	})
	b.Run("bcrypt-uncached", func(b *testing.B) {
		for b.Loop() {
			bcrypt.CompareHashAndPassword(hash, []byte("pw"))
		}
	})
}
