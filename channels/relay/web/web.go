package web

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"net/http"
	"time"
)

//go:embed client.js index.html demo
var files embed.FS

// pageCSP is the demo page's policy: its own scripts and styles only, nothing inline;
// images from anywhere over http(s), because a show_message icon is any absolute URL;
// connections to its own origin only (the websocket and the notify API).
const pageCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' https: http:; " +
	"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// fileCSP is the policy of every other file: should one be opened as a document (an
// SVG can carry script), it may run and load nothing.
const fileCSP = "default-src 'none'; frame-ancestors 'none'; sandbox"

type asset struct {
	path        string // URL path
	file        string // name in files
	contentType string
	page        bool // the HTML page: gets pageCSP
	shared      bool // may be loaded by pages of other origins
	body        []byte
	etag        string
}

var assets = []*asset{
	{path: "/", file: "index.html", contentType: "text/html; charset=utf-8", page: true},
	{path: "/client.js", file: "client.js", contentType: "text/javascript; charset=utf-8", shared: true},
	{path: "/demo/app.js", file: "demo/app.js", contentType: "text/javascript; charset=utf-8"},
	{path: "/demo/style.css", file: "demo/style.css", contentType: "text/css; charset=utf-8"},
	{path: "/demo/telephone.svg", file: "demo/telephone.svg", contentType: "image/svg+xml"},
	{path: "/demo/bell.svg", file: "demo/bell.svg", contentType: "image/svg+xml"},
}

var byPath = func() map[string]*asset {
	m := make(map[string]*asset, len(assets))
	for _, a := range assets {
		body, err := files.ReadFile(a.file)
		if err != nil {
			panic("web: " + err.Error()) // an asset listed but not embedded: a build mistake
		}
		sum := sha256.Sum256(body)
		a.body = body
		a.etag = `"` + hex.EncodeToString(sum[:16]) + `"`
		m[a.path] = a
	}
	return m
}()

// Patterns are the http.ServeMux patterns of the files Handler serves, one per file,
// so that a mux keeps answering every other path itself. The page is "GET /{$}".
func Patterns() []string {
	p := make([]string, 0, len(assets))
	for _, a := range assets {
		if a.path == "/" {
			p = append(p, "GET /{$}")
			continue
		}
		p = append(p, "GET "+a.path)
	}
	return p
}

// Handler serves the client, the demo page and its files. Mount it on each of
// Patterns; on its own it answers 404 for any other path and 405 for methods other
// than GET and HEAD.
func Handler() http.Handler { return http.HandlerFunc(serve) }

func serve(w http.ResponseWriter, r *http.Request) {
	a, ok := byPath[r.URL.Path]
	if !ok {
		http.NotFound(w, r)
		return
	}
	h := w.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		h.Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	h.Set("Content-Type", a.contentType)
	h.Set("Cache-Control", "no-cache")
	h.Set("ETag", a.etag)
	if a.page {
		h.Set("Content-Security-Policy", pageCSP)
	} else {
		h.Set("Content-Security-Policy", fileCSP)
	}
	if a.shared {
		h.Set("Access-Control-Allow-Origin", "*")
		h.Set("Cross-Origin-Resource-Policy", "cross-origin")
	}
	// ServeContent answers If-None-Match with 304, HEAD without a body, and ranges.
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(a.body))
}
