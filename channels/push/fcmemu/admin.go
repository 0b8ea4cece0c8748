package fcmemu

import (
	"encoding/json"
	"io"
	"net/http"
	"time"
)

// The admin API under /emulator/ is the emulator's own, not FCM's: it lets a test or
// a person see what arrived and script failures. It needs no credentials.

// messagesPage is GET /emulator/messages.
type messagesPage struct {
	Total    int        `json:"total"` // accepted since the last reset, kept or not
	Messages []Received `json:"messages"`
}

// serveMessages lists the kept messages, oldest first; ?token= keeps those to one token.
func (e *Emulator) serveMessages(w http.ResponseWriter, r *http.Request) {
	msgs := e.Messages()
	if t := r.URL.Query().Get("token"); t != "" {
		msgs = e.MessagesTo(t)
	}
	writeJSON(w, http.StatusOK, messagesPage{Total: e.Stats().Accepted, Messages: msgs})
}

func (e *Emulator) serveClearMessages(w http.ResponseWriter, _ *http.Request) {
	e.ClearMessages()
	w.WriteHeader(http.StatusNoContent)
}

func (e *Emulator) serveRules(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string][]Rule{"rules": e.Rules()})
}

// serveAddRule adds the Rule in the body: {"token":"...","error":"UNREGISTERED"}.
func (e *Emulator) serveAddRule(w http.ResponseWriter, r *http.Request) {
	var rule Rule
	if !decodeAdmin(w, r, &rule) {
		return
	}
	if err := e.Fail(rule); err != nil {
		writeAPIError(w, http.StatusBadRequest, "INVALID_ARGUMENT", err.Error())
		return
	}
	writeJSON(w, http.StatusCreated, rule)
}

func (e *Emulator) serveClearRules(w http.ResponseWriter, _ *http.Request) {
	e.ClearRules()
	w.WriteHeader(http.StatusNoContent)
}

// serveLatency sets the latency: {"latency":"100ms"}.
func (e *Emulator) serveLatency(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Latency string `json:"latency"`
	}
	if !decodeAdmin(w, r, &body) {
		return
	}
	d, err := time.ParseDuration(body.Latency)
	if err != nil || d < 0 {
		writeAPIError(w, http.StatusBadRequest, "INVALID_ARGUMENT", "latency must be a duration such as 100ms")
		return
	}
	e.SetLatency(d)
	writeJSON(w, http.StatusOK, map[string]string{"latency": d.String()})
}

func (e *Emulator) serveStats(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, e.Stats())
}

func (e *Emulator) serveReset(w http.ResponseWriter, _ *http.Request) {
	e.Reset()
	w.WriteHeader(http.StatusNoContent)
}

func decodeAdmin(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(io.LimitReader(r.Body, 1<<16))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeAPIError(w, http.StatusBadRequest, "INVALID_ARGUMENT", "invalid JSON: "+err.Error())
		return false
	}
	return true
}
