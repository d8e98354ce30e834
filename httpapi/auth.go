package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/go-chi/chi/v5"
)

// Users and permissions.
//
// With Config.Users set, every route but /healthz and /readyz needs a user: HTTP Basic
// credentials or a Bearer token (401 with WWW-Authenticate without them), and the user needs
// the route's permission (403 naming it otherwise): read (queries, status, apps, sinks,
// subscriptions, metrics), write (ingest) or admin (apps, membership, transfer, debug,
// profiles). Node routes (/v1/internal/*, POST /v1/cluster/join) answer only requests with a
// node identity (Config.NodeIdentity), never a user's.
//
// A node forwarding a user's request to another node sends the user's name in
// onBehalfOfHeader and its own node credentials (Config.NodeCredentials). The receiving node
// believes the header only from a request with a node identity, and then checks that user's
// permission itself; from anyone else the header is dropped. So a follower cannot be used
// to do more than the user may.

// onBehalfOfHeader names the user a node-to-node request acts for.
const onBehalfOfHeader = "Tally-On-Behalf-Of"

// Users authenticates API clients and tells what each may do. *security.Users implements
// it.
type Users interface {
	// Authenticate returns the user whose credentials r carries (Basic or Bearer); ok is
	// false when it carries none or they are wrong.
	Authenticate(r *http.Request) (user string, ok bool)
	// Allowed reports whether user has permission perm ("read", "write" or "admin").
	Allowed(user, perm string) bool
}

// The permissions a route can need.
const (
	permOpen  = ""      // anyone
	permAny   = "any"   // any authenticated user (routes that do not exist: 404 after auth)
	permRead  = "read"  // security.PermRead
	permWrite = "write" // security.PermWrite
	permAdmin = "admin" // security.PermAdmin
)

// access is what a route needs.
type access struct {
	// perm is the permission a user needs; with node set, the permission of the user a
	// node acts for, if it names one.
	perm string
	// node: only a request with a node identity may call the route.
	node bool
}

// routeAccess maps every route ("METHOD pattern" as registered in routes, or "* pattern"
// for a route of every method) to what it needs. TestRouteAccess_EveryRoute checks that no route is missing.
var routeAccess = map[string]access{
	"POST /v1/streams/{stream}/events":   {perm: permWrite},
	"GET /v1/streams/{stream}/subscribe": {perm: permRead},
	"GET /v1/sinks":                      {perm: permRead},
	"POST /stores/query":                 {perm: permRead},
	"POST /query":                        {perm: permRead},
	"GET /v1/aggregations/{name}":        {perm: permRead},
	"POST /v1/apps":                      {perm: permAdmin},
	"GET /v1/apps":                       {perm: permRead}, // ?text=true: admin (accessOf)
	"DELETE /v1/apps/{name}":             {perm: permAdmin},
	"POST /v1/cluster/join":              {node: true},
	"POST /v1/cluster/transfer":          {perm: permAdmin},
	"DELETE /v1/cluster/nodes/{id}":      {perm: permAdmin},
	"GET /v1/cluster/status":             {perm: permRead},
	"GET /v1/cluster/map":                {perm: permRead},
	"POST /v1/cluster/nodes/{id}/drain":  {perm: permAdmin},
	"POST /v1/internal/rows":             {node: true, perm: permRead},
	"POST /v1/internal/ingest":           {node: true, perm: permWrite},
	"POST /v1/internal/apps":             {node: true, perm: permAdmin},
	"DELETE /v1/internal/apps/{name}":    {node: true, perm: permAdmin},
	"GET /healthz":                       {perm: permOpen},
	"GET /readyz":                        {perm: permOpen},
	"GET /v1/debug/state":                {perm: permAdmin},
	"GET /v1/debug/clock":                {perm: permAdmin},
	"POST /v1/debug/clock":               {perm: permAdmin},
	"* /metrics":                         {perm: permRead}, // r.Handle: every method
	// The console's static files are open, like any page; the API calls it makes are
	// checked as everyone's.
	"* /ui":   {perm: permOpen},
	"* /ui/":  {perm: permOpen},
	"* /ui/*": {perm: permOpen},
}

// accessOf finds what r needs, routing it as the router will, and the route's pattern
// ("" when none matches).
func (s *Server) accessOf(r *http.Request) (access, string) {
	path := r.URL.RawPath
	if path == "" {
		path = r.URL.Path
	}
	pattern := s.mux.Find(chi.NewRouteContext(), r.Method, path)
	switch {
	case pattern == "":
		return access{perm: permAny}, ""
	case strings.HasPrefix(pattern, "/debug/pprof"):
		return access{perm: permAdmin}, pattern
	case pattern == "/v1/apps" && r.Method == http.MethodGet && r.URL.Query().Get("text") == "true":
		// The apps' texts carry sink headers (credentials of the receivers).
		return access{perm: permAdmin}, pattern
	}
	if a, ok := routeAccess[r.Method+" "+pattern]; ok {
		return a, pattern
	}
	if a, ok := routeAccess["* "+pattern]; ok {
		return a, pattern
	}
	return access{perm: permAdmin}, pattern // a route nobody mapped: the safe side
}

// refusing records, for the request metrics, the route of a request refused before it was
// routed.
func refusing(r *http.Request, pattern string) {
	if rctx := chi.RouteContext(r.Context()); rctx != nil && pattern != "" {
		rctx.RoutePatterns = append(rctx.RoutePatterns, pattern)
	}
}

type userKey struct{}

// withUser records in ctx the user a request acts for.
func withUser(ctx context.Context, user string) context.Context {
	return context.WithValue(ctx, userKey{}, user)
}

// userOf is the user a request acts for ("" when users are off, or for a node's own
// requests).
func userOf(ctx context.Context) string {
	u, _ := ctx.Value(userKey{}).(string)
	return u
}

// scopeProducer is the producer ID a request's Producer-Id stands for: with users on,
// "user/Producer-Id", so one user's producers never collide with another's (usernames have
// no '/'). A node's own requests (no user) and a cluster without users keep the ID as sent.
func scopeProducer(user, id string) string {
	if user == "" || id == "" {
		return id
	}
	return user + "/" + id
}

// authorize is the middleware that enforces users and node identities (see above).
func (s *Server) authorize(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		behalf := r.Header.Get(onBehalfOfHeader)
		r.Header.Del(onBehalfOfHeader) // nothing past here sees a client's copy
		users := s.cfg.Users
		if users == nil && s.cfg.NodeIdentity == nil {
			next.ServeHTTP(w, r)
			return
		}
		acc, pattern := s.accessOf(r)
		if !acc.node && acc.perm == permOpen {
			next.ServeHTTP(w, r)
			return
		}
		if s.cfg.NodeIdentity != nil && s.cfg.NodeIdentity(r) {
			if behalf == "" || users == nil {
				next.ServeHTTP(w, r) // a node's own request: nodes are members of the cluster
				return
			}
			// A node acting for a user: the user's permission, checked here.
			if acc.perm != permAny && acc.perm != permOpen && !users.Allowed(behalf, acc.perm) {
				refusing(r, pattern)
				s.forbid(w, r, behalf, acc.perm)
				return
			}
			next.ServeHTTP(w, r.WithContext(withUser(r.Context(), behalf)))
			return
		}
		if users == nil { // node identities only: user routes stay open
			if acc.node {
				refusing(r, pattern)
				s.needNode(w, r)
				return
			}
			next.ServeHTTP(w, r)
			return
		}
		user, ok := users.Authenticate(r)
		if !ok {
			refusing(r, pattern)
			w.Header().Set("WWW-Authenticate", `Basic realm="tally"`)
			msg := "authentication required: send HTTP Basic credentials or a Bearer token"
			if r.Header.Get("Authorization") != "" {
				msg = "wrong username, password or token"
			}
			writeError(w, http.StatusUnauthorized, msg)
			return
		}
		if acc.node {
			refusing(r, pattern)
			s.needNode(w, r)
			return
		}
		if acc.perm != permAny && !users.Allowed(user, acc.perm) {
			refusing(r, pattern)
			s.forbid(w, r, user, acc.perm)
			return
		}
		next.ServeHTTP(w, r.WithContext(withUser(r.Context(), user)))
	})
}

// forbid answers 403 naming the permission user lacks.
func (s *Server) forbid(w http.ResponseWriter, r *http.Request, user, perm string) {
	writeError(w, http.StatusForbidden, fmt.Sprintf("user %q may not %s %s: that needs the %q permission", user, r.Method, r.URL.Path, perm))
}

// needNode answers 403 to a request for a node route without a node identity.
func (s *Server) needNode(w http.ResponseWriter, r *http.Request) {
	const identity = "a node identity (a client certificate signed by the cluster CA, or the cluster key)"
	if r.URL.Path == "/v1/cluster/join" {
		writeError(w, http.StatusForbidden, "joining needs "+identity)
		return
	}
	writeError(w, http.StatusForbidden, fmt.Sprintf("%s %s is for cluster nodes only: it needs %s", r.Method, r.URL.Path, identity))
}

// nodeRequest prepares a request this node sends to another: it names the user the
// request acts for (from ctx) and adds this node's credentials.
func (s *Server) nodeRequest(ctx context.Context, req *http.Request) {
	if u := userOf(ctx); u != "" {
		req.Header.Set(onBehalfOfHeader, u)
	}
	if s.cfg.NodeCredentials != nil {
		s.cfg.NodeCredentials(req)
	}
}
