package httpapi

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/kommo-notify/notify/events"
)

// Server is the HTTP API of the dispatcher's listener. It is safe for concurrent use.
type Server struct {
	cfg     Config
	log     *slog.Logger
	limiter *limiter
	mux     *http.ServeMux
	handler http.Handler
}

// New checks cfg and returns a server with its routes mounted. A Route whose pattern
// conflicts with another is an error rather than a panic.
func New(cfg Config) (*Server, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("httpapi: %w", err)
	}
	s := &Server{
		cfg:     cfg,
		log:     cfg.Logger,
		limiter: newLimiter(cfg.RateLimit),
		mux:     http.NewServeMux(),
	}
	s.mux.HandleFunc("POST /api/v1/notify/{account}/{user}/{type}", s.notify)
	s.mountAccounts()
	s.mux.HandleFunc("GET /api/v1/events/{id}", s.eventStatus)
	s.mountCenter()
	s.mux.HandleFunc("GET /healthz", s.healthz)
	s.mux.HandleFunc("GET /readyz", s.readyz)
	if cfg.MetricsHandler != nil {
		s.mux.Handle("GET /metrics", cfg.MetricsHandler)
	}
	for _, r := range cfg.Routes {
		if err := handle(s.mux, r); err != nil {
			return nil, fmt.Errorf("httpapi: %w", err)
		}
	}
	s.handler = s.logRequests(s.cors(s.jsonMuxErrors(s.mux)))
	return s, nil
}

// handle mounts r, turning the mux's panic on a bad or conflicting pattern into an error.
func handle(mux *http.ServeMux, r Route) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("route %q: %v", r.Pattern, p)
		}
	}()
	mux.Handle(r.Pattern, r.Handler)
	return nil
}

// Handler returns the listener's handler.
func (s *Server) Handler() http.Handler { return s.handler }

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) readyz(w http.ResponseWriter, _ *http.Request) {
	if err := s.cfg.Ready(); err != nil {
		writeError(w, &events.Error{Code: events.CodeUnavailable, Message: "not ready: " + err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// statusOf is the HTTP status of each error code of the contract.
func statusOf(code string) int {
	switch code {
	case events.CodeInvalidJSON, events.CodeInvalidField:
		return http.StatusBadRequest
	case events.CodeUnauthorized:
		return http.StatusUnauthorized
	case events.CodeForbidden:
		return http.StatusForbidden
	case events.CodeUnknownType, events.CodeNotFound:
		return http.StatusNotFound
	case events.CodeTooLarge:
		return http.StatusRequestEntityTooLarge
	case events.CodeUnsupportedMediaType:
		return http.StatusUnsupportedMediaType
	case events.CodeRateLimited:
		return http.StatusTooManyRequests
	case events.CodeUnavailable:
		return http.StatusServiceUnavailable
	default:
		return http.StatusInternalServerError
	}
}

func writeError(w http.ResponseWriter, e *events.Error) {
	writeJSON(w, statusOf(e.Code), events.ErrorBody{Error: e})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil { // only our own response types get here
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
}

// jsonMuxErrors gives the mux's own answers (404 for an unknown path, 405 for a known
// path with another method) the contract's JSON error body. The mux reports them with
// an empty pattern; every request it routes goes through unchanged.
func (s *Server) jsonMuxErrors(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, pattern := mux.Handler(r); pattern == "" {
			w = &muxErrorWriter{ResponseWriter: w, method: r.Method}
		}
		mux.ServeHTTP(w, r)
	})
}

// muxErrorWriter replaces the plain-text body of a mux error with the JSON error body.
type muxErrorWriter struct {
	http.ResponseWriter
	method  string
	written bool
}

func (w *muxErrorWriter) WriteHeader(status int) {
	if w.written {
		return
	}
	w.written = true
	if status < http.StatusBadRequest {
		w.ResponseWriter.WriteHeader(status)
		return
	}
	msg := "no such endpoint"
	if status == http.StatusMethodNotAllowed {
		msg = fmt.Sprintf("method %s not allowed here; allowed: %s", w.method, w.Header().Get("Allow"))
	}
	w.Header().Del("X-Content-Type-Options")
	// The contract's codes have no word for 405; the request names no resource that
	// answers to its method, which is what not_found says.
	writeJSON(w.ResponseWriter, status, events.ErrorBody{Error: &events.Error{Code: events.CodeNotFound, Message: msg}})
}

func (w *muxErrorWriter) Write(p []byte) (int, error) {
	if !w.written {
		w.WriteHeader(http.StatusOK)
	}
	return len(p), nil // the mux's text body; ours is written
}

func (w *muxErrorWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// logRequests logs one debug record per request: method, path (never the query, which
// may carry a user token), status, size and duration. Credentials and bodies are never
// logged.
func (s *Server) logRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.log.Enabled(r.Context(), slog.LevelDebug) {
			next.ServeHTTP(w, r)
			return
		}
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w}
		next.ServeHTTP(rec, r)
		s.log.LogAttrs(r.Context(), slog.LevelDebug, "http request",
			slog.String("method", r.Method),
			slog.String("path", r.URL.Path),
			slog.Int("status", rec.status()),
			slog.Int64("bytes", rec.bytes),
			slog.Duration("duration", time.Since(start)),
			slog.String("remote_addr", r.RemoteAddr))
	})
}

// statusRecorder notes the status and size of a response. Unwrap lets
// http.ResponseController (and websocket libraries) reach Flush and Hijack.
type statusRecorder struct {
	http.ResponseWriter
	code  int
	bytes int64
}

func (r *statusRecorder) WriteHeader(status int) {
	if r.code == 0 {
		r.code = status
	}
	r.ResponseWriter.WriteHeader(status)
}

func (r *statusRecorder) Write(p []byte) (int, error) {
	if r.code == 0 {
		r.code = http.StatusOK
	}
	n, err := r.ResponseWriter.Write(p)
	r.bytes += int64(n)
	return n, err
}

func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

func (r *statusRecorder) status() int {
	if r.code == 0 {
		return http.StatusOK
	}
	return r.code
}
