package httpapi

import (
	"net/http"
	"net/url"
	"path"
	"strings"

	"github.com/kommo-notify/notify/events"
)

// corsMaxAge lets a browser reuse a preflight answer for ten minutes.
const corsMaxAge = "600"

// cors lets pages of the allowed origins call the API from the browser: /client.js's
// APP.notifications on a CRM page served from another origin. It answers preflights
// and marks responses to allowed origins; other origins get no CORS headers, so the
// browser keeps their pages out. Credentials travel in the Authorization header, never
// in cookies, so Allow-Credentials is not needed.
func (s *Server) cors(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		if origin == "" || !strings.HasPrefix(r.URL.Path, "/api/") {
			next.ServeHTTP(w, r)
			return
		}
		h := w.Header()
		h.Add("Vary", "Origin")
		allowed := originAllowed(origin, r.Host, s.cfg.AllowedOrigins)
		if allowed {
			h.Set("Access-Control-Allow-Origin", origin)
		}
		if r.Method != http.MethodOptions || r.Header.Get("Access-Control-Request-Method") == "" {
			next.ServeHTTP(w, r)
			return
		}
		if !allowed {
			writeError(w, &events.Error{Code: events.CodeForbidden, Message: "origin " + origin + " is not in NOTIFY_ALLOWED_ORIGINS"})
			return
		}
		h.Set("Access-Control-Allow-Methods", "GET, POST, PUT, DELETE")
		h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, Idempotency-Key")
		h.Set("Access-Control-Max-Age", corsMaxAge)
		w.WriteHeader(http.StatusNoContent)
	})
}

// originAllowed reports whether a page at origin may call: its host is the host the
// API is reached at, or matches one of the host or host:port patterns (path.Match, *
// as a wildcard), as for the websocket.
func originAllowed(origin, host string, patterns []string) bool {
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false
	}
	if strings.EqualFold(u.Host, host) {
		return true
	}
	for _, p := range patterns {
		if ok, _ := path.Match(strings.ToLower(p), strings.ToLower(u.Host)); ok {
			return true
		}
	}
	return false
}
