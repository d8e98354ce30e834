package console

import (
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/go-chi/chi/v5"
)

func do(t *testing.T, h http.Handler, method, target string, hdr http.Header) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, target, nil)
	for k, v := range hdr {
		req.Header[k] = v
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func TestHandler_ServesPageWithItsHeaders(t *testing.T) {
	rec := do(t, Handler(), http.MethodGet, "/ui/", nil)
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /ui/: %d %s", rec.Code, rec.Body)
	}
	if got := rec.Header().Get("Content-Type"); got != "text/html; charset=utf-8" {
		t.Errorf("Content-Type %q", got)
	}
	if got := rec.Header().Get("X-Content-Type-Options"); got != "nosniff" {
		t.Errorf("X-Content-Type-Options %q", got)
	}
	csp := rec.Header().Get("Content-Security-Policy")
	if !strings.Contains(csp, "default-src 'self'") || !strings.Contains(csp, "script-src 'self'") {
		t.Errorf("Content-Security-Policy %q does not keep the page to its own files", csp)
	}
	body := rec.Body.String()
	for _, want := range []string{`<script src="console.js"`, `data-tab="cluster"`, `data-tab="query"`, `id="nodes"`, `id="query-result"`} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %s", want)
		}
	}
}

func TestHandler_ContentTypes(t *testing.T) {
	h := Handler()
	for path, want := range map[string]string{
		"/ui/index.html":  "text/html; charset=utf-8",
		"/ui/console.js":  "text/javascript; charset=utf-8",
		"/ui/console.css": "text/css; charset=utf-8",
		"/ui/favicon.svg": "image/svg+xml",
	} {
		rec := do(t, h, http.MethodGet, path, nil)
		if rec.Code != http.StatusOK {
			t.Errorf("GET %s: %d", path, rec.Code)
			continue
		}
		if got := rec.Header().Get("Content-Type"); got != want {
			t.Errorf("GET %s: Content-Type %q, want %q", path, got, want)
		}
		if rec.Body.Len() == 0 {
			t.Errorf("GET %s: empty body", path)
		}
	}
}

// Every file the page refers to is served, and nothing it refers to is elsewhere.
func TestHandler_PageReferencesOnlyItsOwnFiles(t *testing.T) {
	h := Handler()
	page := do(t, h, http.MethodGet, "/ui/", nil).Body.String()
	refs := regexp.MustCompile(`(?:src|href)="([^"#]+)"`).FindAllStringSubmatch(page, -1)
	if len(refs) < 3 {
		t.Fatalf("found only %d references in the page", len(refs))
	}
	for _, m := range refs {
		ref := m[1]
		if strings.Contains(ref, "//") || strings.HasPrefix(ref, "/") {
			t.Errorf("page refers to %q, outside the console", ref)
			continue
		}
		if rec := do(t, h, http.MethodGet, "/ui/"+ref, nil); rec.Code != http.StatusOK {
			t.Errorf("page refers to %s, which answers %d", ref, rec.Code)
		}
	}
}

func TestHandler_RedirectsBareUI(t *testing.T) {
	h := Handler()
	rec := do(t, h, http.MethodGet, "/ui", nil)
	if rec.Code != http.StatusMovedPermanently || rec.Header().Get("Location") != "/ui/" {
		t.Fatalf("GET /ui: %d Location %q, want 301 to /ui/", rec.Code, rec.Header().Get("Location"))
	}
	rec = do(t, h, http.MethodGet, "/ui?x=1", nil)
	if rec.Header().Get("Location") != "/ui/?x=1" {
		t.Errorf("GET /ui?x=1: Location %q, want /ui/?x=1", rec.Header().Get("Location"))
	}
}

func TestHandler_NotFoundAndNoListing(t *testing.T) {
	h := Handler()
	for _, path := range []string{"/ui/nope.js", "/ui/static/", "/ui/static", "/ui/static/index.html", "/ui//", "/ui/./", "/ui/../console.go", "/ui/console.go", "/other", "/uix"} {
		rec := do(t, h, http.MethodGet, path, nil)
		if rec.Code != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", path, rec.Code)
		}
		if strings.Contains(rec.Body.String(), "<a href") {
			t.Errorf("GET %s lists files: %s", path, rec.Body)
		}
	}
}

func TestHandler_MethodsAndCaching(t *testing.T) {
	h := Handler()
	rec := do(t, h, http.MethodPost, "/ui/", nil)
	if rec.Code != http.StatusMethodNotAllowed || rec.Header().Get("Allow") != "GET, HEAD" {
		t.Errorf("POST /ui/: %d Allow %q, want 405 with GET, HEAD", rec.Code, rec.Header().Get("Allow"))
	}
	rec = do(t, h, http.MethodHead, "/ui/console.js", nil)
	if rec.Code != http.StatusOK || rec.Body.Len() != 0 || rec.Header().Get("Content-Type") != "text/javascript; charset=utf-8" {
		t.Errorf("HEAD /ui/console.js: %d, %d body bytes, Content-Type %q", rec.Code, rec.Body.Len(), rec.Header().Get("Content-Type"))
	}
	get := do(t, h, http.MethodGet, "/ui/console.js", nil)
	etag := get.Header().Get("ETag")
	if etag == "" || get.Header().Get("Cache-Control") != "no-cache" {
		t.Fatalf("GET /ui/console.js: ETag %q, Cache-Control %q", etag, get.Header().Get("Cache-Control"))
	}
	if rec := do(t, h, http.MethodGet, "/ui/console.js", http.Header{"If-None-Match": {etag}}); rec.Code != http.StatusNotModified {
		t.Errorf("GET with If-None-Match %s: %d, want 304", etag, rec.Code)
	}
	if other := do(t, h, http.MethodGet, "/ui/console.css", nil).Header().Get("ETag"); other == etag {
		t.Errorf("console.css and console.js share ETag %s", etag)
	}
}

// Mounted the way httpapi mounts it, the handler sees full paths.
func TestHandler_MountedInChi(t *testing.T) {
	r := chi.NewRouter()
	r.Mount("/ui", Handler())
	if rec := do(t, r, http.MethodGet, "/ui", nil); rec.Code != http.StatusMovedPermanently {
		t.Errorf("GET /ui through chi: %d", rec.Code)
	}
	if rec := do(t, r, http.MethodGet, "/ui/", nil); rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "<title>Tally console</title>") {
		t.Errorf("GET /ui/ through chi: %d", rec.Code)
	}
	if rec := do(t, r, http.MethodGet, "/ui/console.css", nil); rec.Code != http.StatusOK {
		t.Errorf("GET /ui/console.css through chi: %d", rec.Code)
	}
	if rec := do(t, r, http.MethodGet, "/ui/missing.css", nil); rec.Code != http.StatusNotFound {
		t.Errorf("GET /ui/missing.css through chi: %d", rec.Code)
	}
}

func TestNewHandler_NeedsIndexAndSkipsUnknownTypes(t *testing.T) {
	if _, err := newHandler(fstest.MapFS{"static/a.js": {Data: []byte("1")}}, "static"); err == nil || !strings.Contains(err.Error(), "no index.html") {
		t.Errorf("without index.html: err %v", err)
	}
	h, err := newHandler(fstest.MapFS{
		"static/index.html":  {Data: []byte("<p>")},
		"static/notes.txt":   {Data: []byte("secret")},
		"static/sub/x.css":   {Data: []byte("p{}")},
		"static/sub/.hidden": {Data: []byte("")},
	}, "static")
	if err != nil {
		t.Fatal(err)
	}
	if rec := do(t, h, http.MethodGet, "/ui/notes.txt", nil); rec.Code != http.StatusNotFound {
		t.Errorf("file of unknown type served: %d", rec.Code)
	}
	if rec := do(t, h, http.MethodGet, "/ui/sub/x.css", nil); rec.Code != http.StatusOK {
		t.Errorf("file in a subdirectory: %d", rec.Code)
	}
	if rec := do(t, h, http.MethodGet, "/ui/sub/", nil); rec.Code != http.StatusNotFound {
		t.Errorf("directory: %d, want 404", rec.Code)
	}
}
