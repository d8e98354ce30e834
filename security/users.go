package security

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"golang.org/x/crypto/bcrypt"
)

// Permissions a user can be given in the users file.
const (
	// PermRead: store queries, aggregations, status, the apps list, sinks, subscriptions,
	// metrics.
	PermRead = "read"
	// PermWrite: ingest.
	PermWrite = "write"
	// PermAdmin: deploying and removing apps, membership changes, leadership transfer,
	// debug endpoints, profiles.
	PermAdmin = "admin"
	// PermAll grants read, write and admin.
	PermAll = "all"
)

// MinTokenBytes is the shortest Bearer token the users file accepts.
const MinTokenBytes = 16

// bcryptCacheSize bounds the remembered outcomes of bcrypt comparisons.
const bcryptCacheSize = 1024

// ErrUsersFile: the users file cannot be used; the message names the entry and the problem.
var ErrUsersFile = errors.New("security: bad users file")

// UserEntry is one entry of the users file (`tally serve --auth FILE`): a JSON list of
// these. Exactly one of Password and PasswordHash (bcrypt) is set; Token is optional and
// lets the user authenticate with "Authorization: Bearer TOKEN".
type UserEntry struct {
	Username     string   `json:"username"`
	Password     string   `json:"password,omitempty"`
	PasswordHash string   `json:"password_hash,omitempty"`
	Token        string   `json:"token,omitempty"`
	Perms        []string `json:"perms"`
}

// user is a checked entry.
type user struct {
	name     string
	password [sha256.Size]byte // of the plain password; unused when hash is set
	hash     []byte            // bcrypt
	token    [sha256.Size]byte // of the Bearer token, when hasToken
	hasToken bool
	perms    map[string]bool // read, write, admin
}

// Users is the set of users a node accepts, loaded from the users file. It is immutable
// after loading except for its cache of bcrypt outcomes, and safe for concurrent use.
type Users struct {
	users  map[string]*user
	tokens []*user // the users with a token, in file order

	mu       sync.Mutex
	cacheMax int                        // bcryptCacheSize
	cache    map[[sha256.Size]byte]bool // sha256(user, NUL, password) → outcome of bcrypt
	order    [][sha256.Size]byte        // insertion order, for eviction
}

// LoadUsers reads and checks the users file at path. An error names the file, the entry and the
// problem.
func LoadUsers(path string) (*Users, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read users file: %w", err)
	}
	u, err := ParseUsers(b)
	if err != nil {
		return nil, fmt.Errorf("users file %s: %w", path, err)
	}
	return u, nil
}

// ParseUsers checks a users file's contents: a JSON list of UserEntry. Unknown fields, empty or
// duplicate usernames, duplicate tokens, unknown permissions, and entries with both or
// neither of "password" and "password_hash" are refused with an error naming the entry.
func ParseUsers(data []byte) (*Users, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var entries []UserEntry
	if err := dec.Decode(&entries); err != nil {
		return nil, fmt.Errorf("%w: want a JSON list of {\"username\", \"password\" or \"password_hash\", \"perms\"}: %w", ErrUsersFile, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("%w: unexpected data after the list", ErrUsersFile)
	}
	if len(entries) == 0 {
		return nil, fmt.Errorf("%w: the list has no users", ErrUsersFile)
	}
	us := &Users{users: map[string]*user{}, cache: map[[sha256.Size]byte]bool{}, cacheMax: bcryptCacheSize}
	for i, e := range entries {
		u, err := checkEntry(e)
		if err == nil && us.users[e.Username] != nil {
			err = errors.New("duplicate username")
		}
		if err == nil && u.hasToken {
			for _, prev := range us.tokens {
				if prev.token == u.token {
					err = fmt.Errorf("same token as user %q", prev.name)
				}
			}
		}
		if err != nil {
			return nil, fmt.Errorf("%w: entry %d (%q): %w", ErrUsersFile, i, e.Username, err)
		}
		us.users[u.name] = u
		if u.hasToken {
			us.tokens = append(us.tokens, u)
		}
	}
	return us, nil
}

// checkEntry checks one entry on its own.
func checkEntry(e UserEntry) (*user, error) {
	switch {
	case e.Username == "":
		return nil, errors.New(`"username" is empty`)
	case !utf8.ValidString(e.Username) || strings.ContainsFunc(e.Username, func(r rune) bool { return unicode.IsControl(r) || unicode.IsSpace(r) }):
		return nil, errors.New(`"username" has spaces, control characters or invalid UTF-8`)
	case strings.ContainsAny(e.Username, ":/"):
		// ':' ends the name in HTTP Basic credentials; '/' separates the name from a
		// producer ID in the names that scope producers to their user.
		return nil, errors.New(`"username" has ':' or '/'`)
	case e.Password != "" && e.PasswordHash != "":
		return nil, errors.New(`set "password" or "password_hash", not both`)
	case e.Password == "" && e.PasswordHash == "":
		return nil, errors.New(`set "password" or "password_hash" (bcrypt)`)
	case e.Token != "" && len(e.Token) < MinTokenBytes:
		return nil, fmt.Errorf(`"token" is shorter than %d bytes`, MinTokenBytes)
	case len(e.Perms) == 0:
		return nil, fmt.Errorf(`"perms" is empty: give some of %q, %q, %q, %q`, PermRead, PermWrite, PermAdmin, PermAll)
	}
	u := &user{name: e.Username, perms: map[string]bool{}}
	if e.PasswordHash != "" {
		if _, err := bcrypt.Cost([]byte(e.PasswordHash)); err != nil {
			return nil, fmt.Errorf(`"password_hash" is not a bcrypt hash: %w`, err)
		}
		u.hash = []byte(e.PasswordHash)
	} else {
		u.password = sha256.Sum256([]byte(e.Password))
	}
	if e.Token != "" {
		u.token, u.hasToken = sha256.Sum256([]byte(e.Token)), true
	}
	for _, p := range e.Perms {
		switch p {
		case PermRead, PermWrite, PermAdmin:
			u.perms[p] = true
		case PermAll:
			u.perms[PermRead], u.perms[PermWrite], u.perms[PermAdmin] = true, true, true
		default:
			return nil, fmt.Errorf("unknown permission %q: want %q, %q, %q or %q", p, PermRead, PermWrite, PermAdmin, PermAll)
		}
	}
	return u, nil
}

// Names lists the usernames, sorted.
func (us *Users) Names() []string {
	names := make([]string, 0, len(us.users))
	for n := range us.users {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// Allowed reports whether user has permission perm (PermRead, PermWrite or PermAdmin). An
// unknown user has none.
func (us *Users) Allowed(name, perm string) bool {
	u := us.users[name]
	return u != nil && u.perms[perm]
}

// Check reports whether password is user name's password. Plain passwords are compared in
// constant time; bcrypt outcomes are cached per (user, password), so a client that sends
// the same credentials with every request pays bcrypt's cost once.
func (us *Users) Check(name, password string) bool {
	u := us.users[name]
	given := sha256.Sum256([]byte(password))
	if u == nil {
		// As much work as a plain password, so the answer's timing says little about
		// which usernames exist.
		var none [sha256.Size]byte
		subtle.ConstantTimeCompare(given[:], none[:])
		return false
	}
	if u.hash == nil {
		return subtle.ConstantTimeCompare(given[:], u.password[:]) == 1
	}
	key := cacheKey(name, password)
	us.mu.Lock()
	ok, hit := us.cache[key]
	us.mu.Unlock()
	if hit {
		return ok
	}
	ok = bcrypt.CompareHashAndPassword(u.hash, []byte(password)) == nil
	us.remember(key, ok)
	return ok
}

// cacheKey identifies a (user, password) pair without keeping the password.
func cacheKey(name, password string) [sha256.Size]byte {
	h := sha256.New()
	h.Write([]byte(name))
	h.Write([]byte{0})
	h.Write([]byte(password))
	var k [sha256.Size]byte
	h.Sum(k[:0])
	return k
}

// remember caches a bcrypt outcome, dropping the oldest past cacheMax.
func (us *Users) remember(key [sha256.Size]byte, ok bool) {
	us.mu.Lock()
	defer us.mu.Unlock()
	if _, dup := us.cache[key]; dup {
		return
	}
	if len(us.order) >= us.cacheMax {
		delete(us.cache, us.order[0])
		us.order = us.order[1:]
	}
	us.cache[key] = ok
	us.order = append(us.order, key)
}

// cached is the number of remembered bcrypt outcomes (tests).
func (us *Users) cached() int {
	us.mu.Lock()
	defer us.mu.Unlock()
	return len(us.cache)
}

// CheckToken returns the user whose Bearer token is token. Every user's token is compared,
// each in constant time, so the timing does not tell how much of a token was right.
func (us *Users) CheckToken(token string) (string, bool) {
	given := sha256.Sum256([]byte(token))
	var found *user
	for _, u := range us.tokens {
		if subtle.ConstantTimeCompare(given[:], u.token[:]) == 1 {
			found = u
		}
	}
	if found == nil {
		return "", false
	}
	return found.name, true
}

// Authenticate returns the user that r's Authorization header names, with HTTP Basic
// credentials or a Bearer token; ok is false when r has none or they are wrong.
func (us *Users) Authenticate(r *http.Request) (name string, ok bool) {
	if name, password, basic := r.BasicAuth(); basic {
		if us.Check(name, password) {
			return name, true
		}
		return "", false
	}
	scheme, token, found := strings.Cut(r.Header.Get("Authorization"), " ")
	if found && strings.EqualFold(scheme, "Bearer") {
		return us.CheckToken(strings.TrimSpace(token))
	}
	return "", false
}
