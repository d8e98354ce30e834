// Package console is Tally's web console: a single page of static files (HTML, CSS and
// plain JavaScript) embedded in the binary and served at /ui/.
//
// The page needs nothing from outside the node: no CDN, no web fonts. Everything it shows
// comes from the node's own HTTP API (cluster status, apps, store queries, sinks and
// subscriptions), so it sees exactly what the credentials it sends are allowed to see.
// The files themselves are public.
package console

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"
)

// Prefix is the path the console is served under.
const Prefix = "/ui/"

//go:embed static
var static embed.FS

// contentTypes maps the extensions of the embedded files to their Content-Type. A file with
// another extension is not served.
var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".svg":  "image/svg+xml",
	".png":  "image/png",
}

// securityPolicy keeps the page to its own files: no inline script, nothing from elsewhere.
const securityPolicy = "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"

type file struct {
	body        []byte
	contentType string
	etag        string
}

// handler serves the embedded files, read once.
type handler struct {
	files map[string]file // by name relative to static/, "index.html" for the page
}

// Handler returns the console's handler. It expects the full request path (/ui, /ui/,
// /ui/app.js): mount it at /ui. /ui redirects to /ui/, /ui/ is the page, /ui/NAME one of its
// files; anything else, directories included, is 404. Only GET and HEAD are allowed.
func Handler() http.Handler {
	h, err := newHandler(static, "static")
	if err != nil {
		// The files are compiled in: failing here is a build mistake, caught by the tests.
		panic(fmt.Sprintf("console: %v", err))
	}
	return h
}

func newHandler(fsys fs.FS, root string) (*handler, error) {
	h := &handler{files: map[string]file{}}
	err := fs.WalkDir(fsys, root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		ct, ok := contentTypes[path.Ext(p)]
		if !ok {
			return nil
		}
		b, err := fs.ReadFile(fsys, p)
		if err != nil {
			return fmt.Errorf("read embedded %s: %w", p, err)
		}
		sum := sha256.Sum256(b)
		h.files[strings.TrimPrefix(p, root+"/")] = file{body: b, contentType: ct, etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("load embedded files: %w", err)
	}
	if _, ok := h.files["index.html"]; !ok {
		return nil, fmt.Errorf("load embedded files: no index.html under %s", root)
	}
	return h, nil
}

// ServeHTTP implements http.Handler.
func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, fmt.Sprintf("method %s is not allowed on %s", r.Method, r.URL.Path), http.StatusMethodNotAllowed)
		return
	}
	p := r.URL.Path
	if p == strings.TrimSuffix(Prefix, "/") {
		target := Prefix
		if r.URL.RawQuery != "" {
			target += "?" + r.URL.RawQuery
		}
		http.Redirect(w, r, target, http.StatusMovedPermanently)
		return
	}
	name, ok := strings.CutPrefix(p, Prefix)
	if !ok {
		http.NotFound(w, r)
		return
	}
	if name == "" {
		name = "index.html"
	}
	f, ok := h.files[name]
	if !ok {
		http.Error(w, fmt.Sprintf("no such console file: %s", p), http.StatusNotFound)
		return
	}
	hd := w.Header()
	hd.Set("Content-Type", f.contentType)
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Cache-Control", "no-cache")
	hd.Set("ETag", f.etag)
	if name == "index.html" {
		hd.Set("Content-Security-Policy", securityPolicy)
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("Referrer-Policy", "no-referrer")
	}
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(f.body))
}
