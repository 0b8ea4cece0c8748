package web

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"golang.org/x/net/html"
)

func get(t *testing.T, h http.Handler, method, path string, header http.Header) *http.Response {
	t.Helper()
	req := httptest.NewRequestWithContext(t.Context(), method, path, nil)
	for k, v := range header {
		req.Header[k] = v
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Result()
}

func body(t *testing.T, resp *http.Response) []byte {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestServesEachFile(t *testing.T) {
	cases := []struct {
		path, file, contentType string
	}{
		{"/", "index.html", "text/html; charset=utf-8"},
		{"/client.js", "client.js", "text/javascript; charset=utf-8"},
		{"/demo/app.js", "demo/app.js", "text/javascript; charset=utf-8"},
		{"/demo/style.css", "demo/style.css", "text/css; charset=utf-8"},
		{"/demo/telephone.svg", "demo/telephone.svg", "image/svg+xml"},
		{"/demo/bell.svg", "demo/bell.svg", "image/svg+xml"},
	}
	for _, tc := range cases {
		t.Run(tc.path, func(t *testing.T) {
			resp := get(t, Handler(), http.MethodGet, tc.path, nil)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d", resp.StatusCode)
			}
			want, _ := files.ReadFile(tc.file)
			if got := body(t, resp); !bytes.Equal(got, want) {
				t.Errorf("body differs from the embedded %s", tc.file)
			}
			for header, want := range map[string]string{
				"Content-Type":           tc.contentType,
				"X-Content-Type-Options": "nosniff",
				"Referrer-Policy":        "no-referrer",
				"Cache-Control":          "no-cache",
			} {
				if got := resp.Header.Get(header); got != want {
					t.Errorf("%s: %q, want %q", header, got, want)
				}
			}
			if etag := resp.Header.Get("ETag"); !regexp.MustCompile(`^"[0-9a-f]{32}"$`).MatchString(etag) {
				t.Errorf("ETag %q is not a quoted content hash", etag)
			}
			if resp.Header.Get("Content-Security-Policy") == "" {
				t.Error("no Content-Security-Policy")
			}
		})
	}
}

func TestPagePolicyForbidsInlineCode(t *testing.T) {
	resp := get(t, Handler(), http.MethodGet, "/", nil)
	csp := directives(resp.Header.Get("Content-Security-Policy"))
	for name, want := range map[string]string{
		"default-src":     "'none'",
		"script-src":      "'self'",
		"style-src":       "'self'",
		"connect-src":     "'self'",
		"base-uri":        "'none'",
		"frame-ancestors": "'none'",
	} {
		if got := csp[name]; got != want {
			t.Errorf("%s %q, want %q", name, got, want)
		}
	}
	if strings.Contains(resp.Header.Get("Content-Security-Policy"), "unsafe") {
		t.Errorf("the policy allows something unsafe: %s", resp.Header.Get("Content-Security-Policy"))
	}
}

func directives(csp string) map[string]string {
	m := map[string]string{}
	for _, d := range strings.Split(csp, ";") {
		name, value, _ := strings.Cut(strings.TrimSpace(d), " ")
		m[name] = value
	}
	return m
}

// TestPageKeepsItsOwnPolicy reads index.html as a browser would: no inline script,
// event handler or style that the policy would block, and every file it loads served.
func TestPageKeepsItsOwnPolicy(t *testing.T) {
	page, _ := files.ReadFile("index.html")
	doc, err := html.Parse(bytes.NewReader(page))
	if err != nil {
		t.Fatal(err)
	}
	var loads []string
	for n := range doc.Descendants() {
		if n.Type != html.ElementNode {
			continue
		}
		if n.Data == "style" {
			t.Error("inline <style> element")
		}
		if n.Data == "script" && (attr(n, "src") == "" || n.FirstChild != nil) {
			t.Error("inline <script>")
		}
		for _, a := range n.Attr {
			if strings.HasPrefix(a.Key, "on") || a.Key == "style" {
				t.Errorf("<%s %s=...> is inline code the policy blocks", n.Data, a.Key)
			}
			if (a.Key == "src" || a.Key == "href") && strings.HasPrefix(a.Val, "/") {
				loads = append(loads, a.Val)
			}
		}
	}
	if len(loads) < 4 {
		t.Fatalf("found only %v", loads)
	}
	for _, path := range loads {
		if resp := get(t, Handler(), http.MethodGet, path, nil); resp.StatusCode != http.StatusOK {
			t.Errorf("the page loads %s: %d", path, resp.StatusCode)
		}
	}
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

func TestRevalidatesWithETag(t *testing.T) {
	first := get(t, Handler(), http.MethodGet, "/client.js", nil)
	etag := first.Header.Get("ETag")

	same := get(t, Handler(), http.MethodGet, "/client.js", http.Header{"If-None-Match": {etag}})
	if same.StatusCode != http.StatusNotModified {
		t.Fatalf("If-None-Match with the current ETag: %d, want 304", same.StatusCode)
	}
	if b := body(t, same); len(b) != 0 {
		t.Errorf("a 304 with %d bytes of body", len(b))
	}
	if same.Header.Get("ETag") != etag {
		t.Errorf("304 ETag %q, want %q", same.Header.Get("ETag"), etag)
	}

	stale := get(t, Handler(), http.MethodGet, "/client.js", http.Header{"If-None-Match": {`"0123"`}})
	if stale.StatusCode != http.StatusOK {
		t.Errorf("If-None-Match with an old ETag: %d, want 200", stale.StatusCode)
	}

	if page := get(t, Handler(), http.MethodGet, "/", nil); page.Header.Get("ETag") == etag {
		t.Error("two files share an ETag")
	}
}

func TestHeadAndMethods(t *testing.T) {
	head := get(t, Handler(), http.MethodHead, "/client.js", nil)
	if head.StatusCode != http.StatusOK || len(body(t, head)) != 0 || head.Header.Get("ETag") == "" {
		t.Errorf("HEAD: %d, ETag %q", head.StatusCode, head.Header.Get("ETag"))
	}
	post := get(t, Handler(), http.MethodPost, "/", nil)
	if post.StatusCode != http.StatusMethodNotAllowed || post.Header.Get("Allow") != "GET, HEAD" {
		t.Errorf("POST: %d, Allow %q", post.StatusCode, post.Header.Get("Allow"))
	}
	if missing := get(t, Handler(), http.MethodGet, "/demo/missing.js", nil); missing.StatusCode != http.StatusNotFound {
		t.Errorf("unknown file: %d", missing.StatusCode)
	}
}

func TestClientMayBeLoadedCrossOrigin(t *testing.T) {
	resp := get(t, Handler(), http.MethodGet, "/client.js", nil)
	if resp.Header.Get("Access-Control-Allow-Origin") != "*" || resp.Header.Get("Cross-Origin-Resource-Policy") != "cross-origin" {
		t.Errorf("client.js headers %v", resp.Header)
	}
	if page := get(t, Handler(), http.MethodGet, "/", nil); page.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Error("the page is shared cross-origin")
	}
}

// TestPatternsMount mounts the handler the way the daemon does, one pattern per file:
// each file is reachable, and every other path is still the mux's to answer.
func TestPatternsMount(t *testing.T) {
	mux := http.NewServeMux()
	for _, p := range Patterns() {
		mux.Handle(p, Handler())
	}
	mux.HandleFunc("GET /api/", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusTeapot) })
	for _, a := range assets {
		if resp := get(t, mux, http.MethodGet, a.path, nil); resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s: %d", a.path, resp.StatusCode)
		}
	}
	if resp := get(t, mux, http.MethodGet, "/api/x", nil); resp.StatusCode != http.StatusTeapot {
		t.Errorf("the root pattern captured /api/x: %d", resp.StatusCode)
	}
	if resp := get(t, mux, http.MethodGet, "/elsewhere", nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /elsewhere: %d", resp.StatusCode)
	}
}

// TestClientUsesNoHTMLSinks is a guard on client.js: payload strings reach the page
// only through textContent and createElement, so none of the APIs that parse HTML into
// the live document, or run strings as code, may appear in it.
func TestClientUsesNoHTMLSinks(t *testing.T) {
	for _, name := range []string{"client.js", "demo/app.js"} {
		src, _ := files.ReadFile(name)
		for _, sink := range []string{".innerHTML", ".outerHTML", "insertAdjacentHTML", "document.write", "eval(",
			"Function(", "createContextualFragment", "setHTMLUnsafe", "srcdoc", "setAttribute('style'", "setAttribute('on"} {
			if bytes.Contains(src, []byte(sink)) {
				t.Errorf("%s uses %s", name, sink)
			}
		}
	}
}

// TestClientIsQuiet is a guard on client.js and the demo's script: a host page's
// console is its own, so neither writes to it (errors of the integrator's hooks are
// reported with reportError, as uncaught errors are).
func TestClientIsQuiet(t *testing.T) {
	for _, name := range []string{"client.js", "demo/app.js"} {
		src, _ := files.ReadFile(name)
		for _, call := range []string{"console.", "debugger", "alert(", "confirm("} {
			if bytes.Contains(src, []byte(call)) {
				t.Errorf("%s uses %s", name, call)
			}
		}
	}
}
