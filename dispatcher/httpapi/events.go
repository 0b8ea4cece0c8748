package httpapi

import (
	"context"
	"errors"
	"net/http"

	"github.com/kommo-notify/notify/dispatcher"
	"github.com/kommo-notify/notify/events"
)

// Status keeps the delivery status of durable events; *dispatcher.Dispatcher is one.
type Status interface {
	// Accepted records an event the API has just published, so its status answers at
	// once, every channel queued.
	Accepted(ev *events.Event) error
	// EventStatus is every delivery of one event; dispatcher.ErrUnknownEvent if none.
	EventStatus(ctx context.Context, id string) (*dispatcher.EventStatus, error)
}

var _ Status = (*dispatcher.Dispatcher)(nil)

// eventStatus serves GET /api/v1/events/{id} to a producer or admin key. An event of
// an account the key may not see is answered like an unknown one: 404.
func (s *Server) eventStatus(w http.ResponseWriter, r *http.Request) {
	cred, ok := bearer(r.Header.Get("Authorization"))
	if !ok {
		w.Header().Set("WWW-Authenticate", `Bearer realm="notify"`)
		writeError(w, &events.Error{Code: events.CodeUnauthorized, Message: "missing API key: send Authorization: Bearer <key>"})
		return
	}
	producer, _ := s.cfg.APIKeys.Authorize(cred, "")
	admin, _ := s.cfg.AdminKeys.Authorize(cred, "")
	if !producer && !admin {
		if s.cfg.Users != nil {
			if _, err := s.cfg.Users.Verify(cred); err == nil {
				writeError(w, &events.Error{Code: events.CodeForbidden, Message: "delivery status takes an API key or an admin key, not a user token"})
				return
			}
		}
		w.Header().Set("WWW-Authenticate", `Bearer realm="notify", error="invalid_token"`)
		writeError(w, &events.Error{Code: events.CodeUnauthorized, Message: "unknown API key"})
		return
	}
	id := r.PathValue("id")
	if events.CheckID(id) != nil {
		writeError(w, events.FieldError("id", "must be 1 to %d printable ASCII characters without spaces", events.MaxIDHeaderLen))
		return
	}
	if s.cfg.Status == nil {
		writeError(w, &events.Error{Code: events.CodeUnavailable, Message: "delivery status is not kept by this server"})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.PublishTimeout)
	defer cancel()
	st, err := s.cfg.Status.EventStatus(ctx, id)
	notFound := &events.Error{Code: events.CodeNotFound, Message: "no delivery status for event " + id + " (unknown, not routed yet, or expired)"}
	switch {
	case errors.Is(err, dispatcher.ErrUnknownEvent):
		writeError(w, notFound)
		return
	case err != nil:
		s.log.Warn("read delivery status", "event_id", id, "error", err)
		writeError(w, &events.Error{Code: events.CodeUnavailable, Message: "could not read the delivery status: NATS is unavailable"})
		return
	}
	if !s.maySee(cred, st.Account) {
		writeError(w, notFound)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

// maySee reports whether a producer or admin key covers account.
func (s *Server) maySee(cred, account string) bool {
	if known, ok := s.cfg.APIKeys.Authorize(cred, account); known {
		return ok
	}
	_, ok := s.cfg.AdminKeys.Authorize(cred, account)
	return ok
}
